# Shared build rules of the plugins in this directory. A plugin's Makefile sets NAME (the
# library name) and includes this file; `make` builds build/lib$(NAME).so, `make test`
# builds and runs test.c against it.
ABI_INCLUDE ?= $(dir $(lastword $(MAKEFILE_LIST)))../Sources/CDecoupledPluginABI/include
CC ?= cc
CFLAGS ?= -O3 -Wall -Wextra -Werror -std=c11
BUILD = build

all: $(BUILD)/lib$(NAME).so

$(BUILD)/lib$(NAME).so: $(NAME).c $(ABI_INCLUDE)/decoupled_plugin.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -fPIC -shared -I$(ABI_INCLUDE) -o $@ $< -lm

$(BUILD)/test: test.c $(BUILD)/lib$(NAME).so
	$(CC) $(CFLAGS) -I$(ABI_INCLUDE) -o $@ test.c -ldl -lm

test: $(BUILD)/test
	./$(BUILD)/test $(BUILD)/lib$(NAME).so

clean:
	rm -rf $(BUILD)

.PHONY: all test clean
