//! The `qshm` command-line tool (skeleton: the verbs come with their issue).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("key") if args.len() == 2 => {
            let key = qshm::NativeKey::legacy(&args[1], qshm::KeyType::legacy_default_for_os());
            println!("{}", key.native_key());
            println!("{}", key.lock_key().native_key());
            println!("{key}");
        }
        _ => {
            eprintln!("usage: qshm key KEY");
            std::process::exit(2);
        }
    }
}
