use plinth_core::config::{Config, SETTINGS};

pub fn show(config: &Config, list: bool) {
    if list {
        println!(
            "{:<28} {:<34} {:<28} description",
            "setting", "environment variable", "default"
        );
        for s in SETTINGS {
            let default = if s.default.is_empty() { "(not set)" } else { s.default };
            println!("{:<28} {:<34} {:<28} {}", s.key, s.env, default, s.doc.trim());
        }
        return;
    }
    for (key, value) in config.describe() {
        println!("{key} = {value}");
    }
}
