//! The subject layout. Only this module knows how subjects and stream names are spelled.
//!
//! ```text
//! lc.ev.<partition>.<tenant>.<aggregate kind>.<aggregate id>
//! lc.ev.p3.acme.punch.CQZ7224460246
//! ```
//!
//! A tenant lives in exactly one partition (a hash of its id), and a partition is one
//! stream, `LC_EVENTS_P<k>`. Everything of one tenant is therefore totally ordered in one
//! stream, while many tenants spread over `partitions` streams whose leaders a cluster
//! places on different servers. Aggregate ids are escaped into a single token.

use schemas::ids::TenantId;
use schemas::{Aggregate, AggregateKind};

pub const SUBJECT_ROOT: &str = "lc.ev";
pub const STREAM_PREFIX: &str = "LC_EVENTS_P";

/// Partition arithmetic for a deployment with `count` partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions {
    count: u16,
}

impl Partitions {
    pub fn new(count: u16) -> Self {
        assert!(count > 0, "at least one partition");
        Self { count }
    }

    pub fn count(self) -> u16 {
        self.count
    }

    /// FNV-1a of the tenant id: stable across builds and platforms, unlike `std`'s hasher.
    pub fn of(self, tenant: &TenantId) -> u16 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in tenant.as_str().bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        (hash % u32::from(self.count)) as u16
    }

    pub fn stream_name(self, partition: u16) -> String {
        format!("{STREAM_PREFIX}{partition}")
    }

    pub fn stream_of(self, tenant: &TenantId) -> String {
        self.stream_name(self.of(tenant))
    }

    /// The subjects a partition's stream captures.
    pub fn stream_subject(self, partition: u16) -> String {
        format!("{SUBJECT_ROOT}.p{partition}.>")
    }

    pub fn event_subject(self, tenant: &TenantId, aggregate: &Aggregate) -> String {
        format!(
            "{SUBJECT_ROOT}.p{}.{}.{}.{}",
            self.of(tenant),
            tenant_token(tenant),
            aggregate.kind.token(),
            escape_token(&aggregate.id)
        )
    }

    /// Every event of a tenant.
    pub fn tenant_filter(self, tenant: &TenantId) -> String {
        format!(
            "{SUBJECT_ROOT}.p{}.{}.>",
            self.of(tenant),
            tenant_token(tenant)
        )
    }

    /// Every event of one kind of aggregate of every tenant of a partition.
    pub fn partition_kind_filter(self, partition: u16, kind: AggregateKind) -> String {
        format!("{SUBJECT_ROOT}.p{partition}.*.{}.>", kind.token())
    }

    /// Every event of one kind of aggregate of a tenant (e.g. all punches).
    pub fn kind_filter(self, tenant: &TenantId, kind: AggregateKind) -> String {
        format!(
            "{SUBJECT_ROOT}.p{}.{}.{}.>",
            self.of(tenant),
            tenant_token(tenant),
            kind.token()
        )
    }
}

fn tenant_token(tenant: &TenantId) -> &str {
    // TenantId is validated to be a safe token already.
    tenant.as_str()
}

/// Makes any string one subject token: ASCII letters, digits, `-` and `_` stay; every
/// other byte becomes `~XX` (hex). Reversible by [`unescape_token`], and injective, so
/// two ids never share a subject.
pub fn escape_token(id: &str) -> String {
    if id.is_empty() {
        return "~".to_owned();
    }
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("~{byte:02X}"));
        }
    }
    out
}

pub fn unescape_token(token: &str) -> Option<String> {
    if token == "~" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'~' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_reversible_and_token_safe() {
        for id in ["CQZ7224460246", "a.b", "x y*z>", "", "~", "工号", "A~41"] {
            let token = escape_token(id);
            assert!(!token.is_empty());
            assert!(
                !token.contains(['.', '*', '>', ' ', '\t']),
                "{token:?} is not one token"
            );
            assert_eq!(unescape_token(&token).as_deref(), Some(id));
        }
        assert_ne!(escape_token("A~41"), escape_token("AA"));
    }

    #[test]
    fn a_tenant_always_lands_in_the_same_partition() {
        let p = Partitions::new(8);
        let acme = TenantId::parse("acme").unwrap();
        let first = p.of(&acme);
        assert!(first < 8);
        assert_eq!(p.of(&acme), first);
        // Pinned: the partition of a tenant must never change between builds.
        assert_eq!(Partitions::new(8).of(&acme), 7);
        let subject = p.event_subject(&acme, &Aggregate::new(AggregateKind::Punches, "SN.1"));
        assert_eq!(subject, "lc.ev.p7.acme.punch.SN~2E1");
    }

    #[test]
    fn tenants_spread_over_partitions() {
        let p = Partitions::new(8);
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            let t = TenantId::parse(&format!("tenant-{i}")).unwrap();
            counts[usize::from(p.of(&t))] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}

/// Text made fit for a NATS header value (a service error's reason). A header ends at a
/// line break, and clients refuse or fail on one that holds any, or any byte outside
/// ASCII (nats-py cannot parse the reply at all). Lines are joined (a line ending in
/// ':' by a space, others by "; "), other control characters dropped, and anything
/// outside ASCII written as JSON escapes (`\u4f11` for 休; `\` and `"` escaped too), so
/// a client gets the exact text back by reading the value as a JSON string's inside.
pub fn header_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        for c in line.chars().filter(|c| !c.is_control()) {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                c if c.is_ascii() => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
    }
    out
}

/// The text a [`header_value`] carries (a value that is not one is taken as it is).
pub fn header_text(value: &str) -> String {
    serde_json::from_str(&format!("\"{value}\"")).unwrap_or_else(|_| value.to_owned())
}

#[cfg(test)]
mod header_tests {
    use super::{header_text, header_value};

    #[test]
    fn a_reason_of_several_lines_is_one_header_line_of_ascii() {
        assert_eq!(
            header_value(
                "the sheet has 2 bad cell(s); nothing was applied:\nB2: empty\r\nC3: unknown\n"
            ),
            "the sheet has 2 bad cell(s); nothing was applied: B2: empty; C3: unknown"
        );
        assert_eq!(header_value("tab\there"), "tabhere");
        let odd = "\"早班\" is not 休 \\ 😀";
        assert_eq!(header_text(&header_value(odd)), odd);
        assert_eq!(
            header_value(odd),
            "\\\"\\u65e9\\u73ed\\\" is not \\u4f11 \\\\ \\ud83d\\ude00"
        );
    }
}
