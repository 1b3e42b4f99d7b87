/* main.c -- placeholder until the loop lands. */
int main(void) { return 0; }
