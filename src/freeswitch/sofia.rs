//! Which dialplan context mod_sofia gives a call, as sofia.c (v1.10.12) decides it. Shared
//! by `lint` (inbound checks) and `route` (`--from-trunk`), so both read a tree alike.

/// A profile's context: its `context` setting, else `default` (`config_sofia_profile()`:
/// `if (!profile->context) profile->context = "default"`). Commented-out params do not count.
pub fn profile_context(profile_text: &str) -> String {
    super::xml_param::params(profile_text, "settings")
        .into_iter()
        .rev()
        .find(|(n, _)| n == "context")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "default".to_string())
}

/// The context of a call a gateway receives: the gateway's `context` param, else its
/// profile's (`parse_gateways()`: `*context = profile->context`, and `default` when that is
/// unset). `profile_text` is the profile's file when known; without it the stock
/// `external` profile's `public` is assumed, as switchyard's own trees use that profile.
pub fn gateway_context(gateway_param: Option<&str>, profile_text: Option<&str>) -> String {
    match (gateway_param, profile_text) {
        (Some(c), _) if !c.is_empty() => c.to_string(),
        (_, Some(p)) => profile_context(p),
        (_, None) => "public".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_falls_back_gateway_then_profile_then_default() {
        let with = "<profile><settings>\n<param name=\"context\" value=\"public\"/>\n</settings></profile>";
        let without = "<profile><settings>\n<!-- <param name=\"context\" value=\"public\"/> -->\n</settings></profile>";
        assert_eq!(gateway_context(Some("trunk_in"), Some(without)), "trunk_in");
        assert_eq!(gateway_context(None, Some(with)), "public");
        assert_eq!(gateway_context(None, Some(without)), "default");
        assert_eq!(gateway_context(Some(""), Some(without)), "default");
    }
}
