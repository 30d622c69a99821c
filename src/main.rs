fn main() {
    std::process::exit(switchyard::cli::main(std::env::args_os()));
}
