#!lua name=nousu
