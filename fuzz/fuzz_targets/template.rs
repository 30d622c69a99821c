//! The template renderer on arbitrary template sources: an error, never a panic or a hang;
//! and whatever it prints of a value is XML-escaped.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let ctx = serde_json::json!({"v": "a\"<&'>b", "n": 3, "list": [1, 2, 3], "m": {"k": "v"}});
    if let Ok(out) = switchyard::template::render_source("fuzz.xml.j2", src, &ctx) {
        if !src.contains("safe") && !src.contains("preprocess") && !src.contains('"') && !src.contains('<') && !src.contains('&') {
            assert!(!out.contains("a\"<&"), "unescaped value in {out:?}");
        }
    }
});
