# Turn the Redis Function library (Lua) into a C string: nousu_lua_source.
file(READ ${IN} HEX HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," HEX "${HEX}")
file(WRITE ${OUT} "/* generated from nousu.lua; do not edit */\n#include <stddef.h>\nconst char nousu_lua_source[] = {${HEX} 0x00};\nconst size_t nousu_lua_source_len = sizeof(nousu_lua_source) - 1;\n")
