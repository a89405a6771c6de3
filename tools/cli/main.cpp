// retnet — command-line front end (tools/cli/app.cpp). Errors: one line on stderr, exit code 1.
#include "app.hpp"

int main(int argc, char** argv) { return retnet::cli::run(argc, argv); }
