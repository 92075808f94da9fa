#include "agent/commands.hpp"

int main(int argc, char** argv) { return telecap::agent::main_cli(argc, argv); }
