//! The inventory and playbook loaders on arbitrary bytes: an error, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = switchyard::inventory::Inventory::parse_str(std::path::Path::new("fuzz.yml"), text);
    let _ = switchyard::playbook::Playbook::parse_str(std::path::Path::new("fuzz.yml"), text);
});
