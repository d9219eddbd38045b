//! Fetches the real data packages without building xtask (which pulls in burn):
//! `cargo run -p clir-data --example fetch [-- NAME]`. Same as `cargo xtask data fetch`.

fn main() {
    let only = std::env::args().nth(1);
    match clir_data::fetch::fetch_all(only.as_deref()) {
        Ok(dirs) => {
            for d in dirs {
                println!("{}", d.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
