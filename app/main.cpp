#include "cli.h"

int main(int argc, char** argv) { return fervid::cli::run(argc, argv); }
