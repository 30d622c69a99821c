//! The in-place XML param editor on arbitrary files and values: an error or a result, never
//! a panic; a well-formed input stays well-formed, and setting the same value twice changes
//! nothing the second time.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (file, rest) = text.split_once('\u{0}').unwrap_or((text, "x"));
    let (name, value) = rest.split_once('=').unwrap_or(("rtp-start-port", rest));
    if let Ok(out) = switchyard::freeswitch::xml_param::set_param(file, "settings", name, value) {
        if roxmltree::Document::parse(file).is_ok() {
            assert!(roxmltree::Document::parse(&out).is_ok(), "well-formed in, broken out:\n{file}\n---\n{out}");
        }
        let again = switchyard::freeswitch::xml_param::set_param(&out, "settings", name, value).expect("second set");
        assert_eq!(again, out, "not idempotent");
    }
});
