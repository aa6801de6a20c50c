//! Request addresses as firmware writes them: `/iclock/cdata`, `/iClock/CData.aspx`,
//! `/iclock/cdata/`, `/adms/iclock/cdata`; `SN=` or `sn=`; `table=ATTLOG` or `attlog`.

/// The canonical target of a device request (path lower-case, without `.aspx`, a
/// trailing slash or anything before `/iclock/`; the query as sent), or `None` if the
/// request is not a device's.
pub fn device_target(target: &str) -> Option<String> {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let lower = path.to_ascii_lowercase();
    let at = lower.find("/iclock/")?;
    let mut path = lower[at..].trim_end_matches('/').to_owned();
    if let Some(stripped) = path.strip_suffix(".aspx") {
        path = stripped.to_owned();
    }
    // `/iclock//cdata` and the like.
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    Some(match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    })
}

/// A request's query parameters, looked up by name in any case; values trimmed.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, if it is there and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_paths_in_every_spelling() {
        for target in [
            "/iclock/cdata?SN=1",
            "/iclock/cdata/?SN=1",
            "/iclock/cdata.aspx?SN=1",
            "/iClock/CData.ASPX/?SN=1",
            "/adms/iclock/cdata?SN=1",
            "/iclock//cdata?SN=1",
        ] {
            assert_eq!(
                device_target(target).as_deref(),
                Some("/iclock/cdata?SN=1"),
                "{target}"
            );
        }
        assert_eq!(
            device_target("/iclock/ping").as_deref(),
            Some("/iclock/ping")
        );
        assert_eq!(device_target("/mobile/punch"), None);
        assert_eq!(device_target("/health"), None);
    }

    #[test]
    fn parameters_in_any_case() {
        let p = Params::parse("sn=CQZ1&Table=attlog&Stamp=&INFO=Ver%208.0,1");
        assert_eq!(p.get("SN"), Some("CQZ1"));
        assert_eq!(p.get("table"), Some("attlog"));
        assert_eq!(p.get("stamp"), None);
        assert!(p.has("Stamp"));
        assert_eq!(p.get("info"), Some("Ver 8.0,1"));
    }
}
