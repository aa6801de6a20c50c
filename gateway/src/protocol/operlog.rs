//! `OPERLOG` and `BIODATA` lines: what a device says about its users, their enrolled
//! biometrics and its own operations, as firmware sends them in
//! `POST /iclock/cdata?table=OPERLOG` and `?table=BIODATA`.
//!
//! ```text
//! USER PIN=1 \t Name=张三 \t Pri=0 \t Passwd= \t Card=[15CD5B07] \t Grp=1 \t TZ=0000000100000000 \t Verify=0 \t ViceCard=
//! FP PIN=1 \t FID=0 \t Size=1024 \t Valid=1 \t TMP=<base64>
//! FACE PIN=1 \t FID=0 \t Valid=1 \t Size=2048 \t TMP=<base64>
//! FVEIN Pin=1 \t FID=0 \t Index=0 \t Valid=1 \t Size=1024 \t Tmp=<base64>
//! BIODATA Pin=1 \t No=0 \t Index=0 \t Valid=1 \t Duress=0 \t Type=9 \t MajorVer=39 \t MinorVer=3 \t Format=0 \t Tmp=<base64>
//! USERPIC PIN=1 \t FileName=1.jpg \t Size=4096 \t Content=<base64>
//! BIOPHOTO PIN=1 \t FileName=9_1.jpg \t Type=9 \t No=0 \t Index=0 \t Size=4096 \t Content=<base64>
//! OPLOG code \t admin \t YYYY-MM-DD HH:MM:SS \t object1 \t object2 \t object3 \t object4
//! ```
//!
//! A tag, a space (some firmwares: a TAB), then TAB-separated fields: `Key=value` pairs
//! (keys in any case, unknown keys ignored) or, for `OPLOG`, positional fields (some
//! firmwares separate them with spaces). Any other tag is kept as [`OperRecord::Other`].
//! Names are GBK on Chinese firmware: decode a body with [`decode_body`] first.
//!
//! Biometric data is never kept: templates and photos are reduced to their size, and a
//! password to whether one is set. Parsing is pure and borrows from the line.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use schemas::events::RejectionReason;

pub use super::attlog::LineRejected;
use super::attlog::MAX_BADGE_DIGITS;
/// Splits a body into lines, as for `ATTLOG`: LF or CRLF, blank lines skipped.
pub use super::attlog::lines;

/// Positional fields of an `OPLOG` line: code, admin, time and four objects.
pub const OPLOG_FIELDS: usize = 7;

/// One line of an `OPERLOG` or `BIODATA` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperRecord<'a> {
    /// `USER`: a user as stored on the device.
    User(UserRecord<'a>),
    /// `FP`: a fingerprint template (algorithm 10 and older).
    Fingerprint(TemplateRecord<'a>),
    /// `FACE`: a near-infrared face template.
    Face(TemplateRecord<'a>),
    /// `BIODATA` (the unified template of newer firmware) and `FVEIN`.
    BioData(BioRecord<'a>),
    /// `USERPIC` and `BIOPHOTO`.
    Photo(PhotoRecord<'a>),
    /// `OPLOG`: an entry of the device's operation log.
    Operation(OperationRecord<'a>),
    /// Any other tag (`IDCARD`, `ERRORLOG`, ...): not read, the caller keeps the line.
    Other { tag: &'a str },
}

/// A `USER` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord<'a> {
    /// The PIN (badge number), trimmed.
    pub pin: &'a str,
    /// As sent, trimmed; may be empty.
    pub name: &'a str,
    /// `Pri`: 0 user, 2 registrar, 6 admin, 10 custom, 14 super admin.
    pub privilege: u8,
    /// `Card` as sent: decimal, or `[..]` hex bytes least significant first
    /// (see [`UserRecord::card_number`]); `None` when empty or zero.
    pub card: Option<&'a str>,
    /// Whether `Passwd` is set; the password itself is not kept.
    pub has_password: bool,
}

impl UserRecord<'_> {
    /// The card number, from either of its forms: `123456789` or `[15CD5B07]`.
    pub fn card_number(&self) -> Option<u64> {
        let card = self.card?;
        match card.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
            Some(hex) if !hex.is_empty() && hex.len() <= 16 && hex.len() % 2 == 0 => {
                let mut n = 0u64;
                for i in (0..hex.len()).step_by(2).rev() {
                    let byte = u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?;
                    n = (n << 8) | u64::from(byte);
                }
                Some(n)
            }
            Some(_) => None,
            None => card.parse().ok(),
        }
    }
}

/// An `FP` or `FACE` line, without its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord<'a> {
    pub pin: &'a str,
    /// `FID`: the finger (0-9), or the face template's number.
    pub index: u8,
    pub valid: bool,
    /// A duress finger (`Valid=3`): it opens and raises an alarm.
    pub duress: bool,
    /// The template's length as received (Base64 characters, what `Size` declares).
    pub size: usize,
}

/// The kind of biometric of a `BIODATA` or `BIOPHOTO` line (its `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BioKind {
    /// 1.
    Fingerprint,
    /// 2: near-infrared face.
    Face,
    /// 7 (and every `FVEIN` line).
    FingerVein,
    /// 8: palm vein.
    Palm,
    /// 9: visible-light face.
    VisibleLightFace,
    /// 10: visible-light palm.
    VisibleLightPalm,
    /// 0 general, 3 voice, 4 iris, 5 retina, 6 palm print, or newer.
    Other(u8),
}

impl BioKind {
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Fingerprint,
            2 => Self::Face,
            7 => Self::FingerVein,
            8 => Self::Palm,
            9 => Self::VisibleLightFace,
            10 => Self::VisibleLightPalm,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Self::Fingerprint => 1,
            Self::Face => 2,
            Self::FingerVein => 7,
            Self::Palm => 8,
            Self::VisibleLightFace => 9,
            Self::VisibleLightPalm => 10,
            Self::Other(code) => code,
        }
    }
}

/// A `BIODATA` or `FVEIN` line, without its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BioRecord<'a> {
    pub pin: &'a str,
    pub kind: BioKind,
    /// `No` (`FID` for `FVEIN`): which finger (0-9), eye or hand (0 left, 1 right).
    pub no: u8,
    /// `Index`: which template of that finger, eye or hand.
    pub index: u8,
    pub valid: bool,
    pub duress: bool,
    /// The template's length as received (Base64 characters).
    pub size: usize,
}

/// Whose picture a photo line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoKind {
    /// `USERPIC`: the picture the device shows.
    User,
    /// `BIOPHOTO`: a picture templates are made from, of this kind.
    Biometric(BioKind),
}

/// A `USERPIC` or `BIOPHOTO` line, without its picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRecord<'a> {
    pub pin: &'a str,
    pub kind: PhotoKind,
    /// The picture's length as received (Base64 characters).
    pub size: usize,
}

/// An `OPLOG` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord<'a> {
    /// 0 boot, 1 shutdown, 3 alarm, 4 menu, 6 fingerprint enrolled, 9 user deleted,
    /// 21 time set, 30 user enrolled, 70 name changed, 101 face enrolled, ...
    pub code: u16,
    /// The administrator's PIN, `0` when none is set.
    pub admin: &'a str,
    /// Local time exactly as sent.
    pub local_time: NaiveDateTime,
    /// The four objects of the operation, trimmed, as sent (for code 6: the PIN, the
    /// finger, the template length).
    pub values: [&'a str; 4],
}

/// The text of a body: UTF-8 if it is UTF-8, else GBK (Chinese firmware's names).
/// A body that is UTF-8 but for a character cut at its very end (a cut POST) stays
/// UTF-8, the cut character replaced by U+FFFD.
pub fn decode_body(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(bytes),
        Err(_) => encoding_rs::GBK.decode_without_bom_handling(bytes).0,
    }
}

/// Parses one line (without its line ending).
pub fn parse_line(line: &str) -> Result<OperRecord<'_>, LineRejected> {
    parse_line_as(line, None)
}

/// The tag a line of a one-kind table has when it names none: `table=USERINFO` lines
/// may be `PIN=..\tName=..` (replies to `DATA QUERY USERINFO`), `table=FINGERTMP`
/// lines `PIN=..\tFID=..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untagged {
    User,
    Fingerprint,
}

/// Parses one line; a line that starts with a `Key=` field instead of a tag is read as
/// `untagged`, if given. Tags are read in any case: Security-PUSH firmware writes
/// `user`, `biodata`, `templatev10` where attendance firmware writes `USER`, `BIODATA`,
/// `FP`, and names some fields differently (`privilege`, `cardno`, `fingerid`).
pub fn parse_line_as(
    line: &str,
    untagged: Option<Untagged>,
) -> Result<OperRecord<'_>, LineRejected> {
    let line = line.trim_start();
    let (tag, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    let (tag, rest) = match untagged {
        Some(kind) if tag.contains('=') => (
            match kind {
                Untagged::User => "USER",
                Untagged::Fingerprint => "FP",
            },
            line,
        ),
        _ => (tag, rest),
    };
    let is = |name: &str| tag.eq_ignore_ascii_case(name);
    let record = if is("USER") {
        OperRecord::User(user(&Fields::of(rest))?)
    } else if is("FP") || is("templatev10") {
        OperRecord::Fingerprint(template(&Fields::of(rest), true)?)
    } else if is("FACE") || is("facev7") {
        OperRecord::Face(template(&Fields::of(rest), false)?)
    } else if is("FVEIN") {
        OperRecord::BioData(finger_vein(&Fields::of(rest))?)
    } else if is("BIODATA") {
        OperRecord::BioData(bio_data(&Fields::of(rest))?)
    } else if is("USERPIC") || is("BIOPHOTO") {
        OperRecord::Photo(photo(is("USERPIC"), &Fields::of(rest))?)
    } else if is("OPLOG") {
        OperRecord::Operation(operation(rest)?)
    } else {
        OperRecord::Other { tag }
    };
    Ok(record)
}

fn rejected(reason: RejectionReason, detail: impl Into<String>) -> LineRejected {
    LineRejected {
        reason,
        detail: detail.into(),
    }
}

/// The `Key=value` fields of a line; the first of a repeated key wins.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn of(rest: &'a str) -> Self {
        Self(
            rest.split('\t')
                .filter_map(|field| field.split_once('='))
                .map(|(key, value)| (key.trim(), value))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }

    /// The first of `keys` present: one field under the names firmwares give it.
    fn any(&self, keys: &[&str]) -> Option<&'a str> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// Fields every firmware sends: a line without them was cut short.
    fn require(&self, keys: &[&str]) -> Result<(), LineRejected> {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| self.get(k).is_none())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(rejected(
                RejectionReason::TooFewFields,
                format!("no {} field", missing.join(", ")),
            ))
        }
    }

    fn pin(&self) -> Result<&'a str, LineRejected> {
        let raw = self.get("PIN").unwrap_or_default();
        let pin = raw.trim_matches(' ');
        if pin.is_empty()
            || pin.len() > MAX_BADGE_DIGITS
            || !pin.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(rejected(
                RejectionReason::UnparsableBadgeNumber,
                format!("PIN {raw:?}"),
            ));
        }
        Ok(pin)
    }

    /// A small number; `default` when the field is absent or empty.
    fn number(&self, key: &str, default: u8) -> Result<u8, LineRejected> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| rejected(RejectionReason::Other, format!("{key}={v:?}"))),
        }
    }

    /// The length of a Base64 payload, refused when shorter than its declared `Size`:
    /// the line was cut mid-payload.
    fn payload(&self, key: &str) -> Result<usize, LineRejected> {
        let size = self.get(key).unwrap_or_default().trim().len();
        let declared = self
            .get("Size")
            .and_then(|s| s.trim().parse::<usize>().ok());
        match declared {
            Some(declared) if size < declared => Err(rejected(
                RejectionReason::TooFewFields,
                format!("{key} of {size} characters, Size={declared}: cut short"),
            )),
            _ => Ok(size),
        }
    }
}

fn user<'a>(fields: &Fields<'a>) -> Result<UserRecord<'a>, LineRejected> {
    // Older firmware sends no `Pri` (and some no `Name`): a user, unnamed.
    fields.require(&["PIN"])?;
    let pin = fields.pin()?;
    let pri = fields.any(&["Pri", "Privilege"]).unwrap_or_default().trim();
    let privilege = if pri.is_empty() {
        0
    } else {
        pri.parse()
            .map_err(|_| rejected(RejectionReason::Other, format!("Pri={pri:?}")))?
    };
    let card = fields
        .any(&["Card", "CardNo"])
        .map(str::trim)
        .filter(|c| !c.trim_matches(['[', ']', '0']).is_empty());
    Ok(UserRecord {
        pin,
        name: fields
            .get("Name")
            .unwrap_or_default()
            .trim_matches(|c: char| c.is_whitespace() || c == '\0'),
        privilege,
        card,
        has_password: fields
            .any(&["Passwd", "Password"])
            .is_some_and(|p| !p.trim().is_empty()),
    })
}

/// An `FP` (`finger`: its finger number `FID` is required) or `FACE` line (`FID` is
/// the face template's number; firmware that keeps one face sends none: 0).
fn template<'a>(fields: &Fields<'a>, finger: bool) -> Result<TemplateRecord<'a>, LineRejected> {
    if finger {
        fields.require(&["PIN"])?;
        if fields.any(&["FID", "FingerID"]).is_none() {
            return Err(rejected(RejectionReason::TooFewFields, "no FID field"));
        }
    } else {
        fields.require(&["PIN"])?;
    }
    if fields.any(&["TMP", "Template"]).is_none() {
        return Err(rejected(RejectionReason::TooFewFields, "no TMP field"));
    }
    let pin = fields.pin()?;
    let valid = fields.number("Valid", 1)?;
    let index = match fields.any(&["FID", "FingerID"]) {
        Some(_) if fields.get("FID").is_some() => fields.number("FID", 0)?,
        Some(_) => fields.number("FingerID", 0)?,
        None => 0,
    };
    let payload = if fields.get("TMP").is_some() {
        "TMP"
    } else {
        "Template"
    };
    Ok(TemplateRecord {
        pin,
        index,
        valid: valid & 1 == 1,
        duress: valid & 2 == 2,
        size: fields.payload(payload)?,
    })
}

fn finger_vein<'a>(fields: &Fields<'a>) -> Result<BioRecord<'a>, LineRejected> {
    fields.require(&["PIN", "FID", "Tmp"])?;
    Ok(BioRecord {
        pin: fields.pin()?,
        kind: BioKind::FingerVein,
        no: fields.number("FID", 0)?,
        index: fields.number("Index", 0)?,
        valid: fields.number("Valid", 1)? == 1,
        duress: false,
        size: fields.payload("Tmp")?,
    })
}

fn bio_type(fields: &Fields<'_>) -> Result<BioKind, LineRejected> {
    let key = if fields.get("Type").is_some() {
        "Type"
    } else {
        "BioType"
    };
    fields.number(key, 0).map(BioKind::from_code)
}

fn bio_data<'a>(fields: &Fields<'a>) -> Result<BioRecord<'a>, LineRejected> {
    fields.require(&["PIN", "Tmp"])?;
    if fields
        .get("Type")
        .or_else(|| fields.get("BioType"))
        .is_none()
    {
        return Err(rejected(RejectionReason::TooFewFields, "no Type field"));
    }
    Ok(BioRecord {
        pin: fields.pin()?,
        kind: bio_type(fields)?,
        no: fields.number("No", 0)?,
        index: fields.number("Index", 0)?,
        valid: fields.number("Valid", 1)? == 1,
        duress: fields.number("Duress", 0)? == 1,
        size: fields.payload("Tmp")?,
    })
}

fn photo<'a>(user_picture: bool, fields: &Fields<'a>) -> Result<PhotoRecord<'a>, LineRejected> {
    let kind = if user_picture {
        fields.require(&["PIN", "Content"])?;
        PhotoKind::User
    } else {
        fields.require(&["PIN", "Type", "Content"])?;
        PhotoKind::Biometric(bio_type(fields)?)
    };
    Ok(PhotoRecord {
        pin: fields.pin()?,
        kind,
        size: fields.payload("Content")?,
    })
}

fn operation(rest: &str) -> Result<OperationRecord<'_>, LineRejected> {
    // `OPLOG 4\t0\t2019-01-01 10:00:00\t0\t0\t0\t0`, or the same with spaces, where the
    // time takes two fields.
    let tabbed = rest.contains('\t');
    let fields: Vec<&str> = if tabbed {
        rest.split('\t').map(str::trim).collect()
    } else {
        rest.split_whitespace().collect()
    };
    let expected = if tabbed {
        OPLOG_FIELDS
    } else {
        OPLOG_FIELDS + 1
    };
    if fields.len() < expected {
        return Err(rejected(
            RejectionReason::TooFewFields,
            format!("{} fields, {expected} expected", fields.len()),
        ));
    }
    let (time, values): (Cow<'_, str>, &[&str]) = if tabbed {
        (Cow::Borrowed(fields[2]), &fields[3..])
    } else {
        (format!("{} {}", fields[2], fields[3]).into(), &fields[4..])
    };
    let code = fields[0];
    let code = code
        .parse()
        .map_err(|_| rejected(RejectionReason::Other, format!("operation code {code:?}")))?;
    let local_time = super::time::parse_local(&time).ok_or_else(|| {
        rejected(
            RejectionReason::UnparsableTime,
            format!("{time:?} is not a date and time"),
        )
    })?;
    Ok(OperationRecord {
        code,
        admin: fields[1],
        local_time,
        values: [values[0], values[1], values[2], values[3]],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> OperRecord<'_> {
        parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    fn reason(line: &str) -> RejectionReason {
        parse_line(line).unwrap_err().reason
    }

    #[test]
    fn user_lines() {
        let line = "USER PIN= 42\tName=Li Wei \tPri=14\tPasswd=1234\tCard=[15CD5B07]\tGrp=1\
                    \tTZ=0000000100000000\tVerify=-1\tViceCard=\tExpires=0\tStartDatetime=0";
        let OperRecord::User(user) = parse(line) else {
            panic!("not a user")
        };
        assert_eq!(
            user,
            UserRecord {
                pin: "42",
                name: "Li Wei",
                privilege: 14,
                card: Some("[15CD5B07]"),
                has_password: true,
            }
        );
        assert_eq!(user.card_number(), Some(123_456_789));

        let OperRecord::User(user) = parse("USER PIN=7\tName=\tPri=0\tPasswd=\tCard=0") else {
            panic!("not a user")
        };
        assert_eq!((user.name, user.card, user.has_password), ("", None, false));
        let OperRecord::User(user) = parse("USER PIN=7\tName=A\tPri=0\tCard=123456789") else {
            panic!("not a user")
        };
        assert_eq!(user.card_number(), Some(123_456_789));
        // Unknown keys, keys in another case, a TAB after the tag.
        let OperRecord::User(user) = parse("USER\tpin=8\tNAME=B\tFace=1\tpri=2\tnoequals") else {
            panic!("not a user")
        };
        assert_eq!((user.pin, user.name, user.privilege), ("8", "B", 2));
    }

    #[test]
    fn template_lines_keep_no_template() {
        let tmp = "TUlDUk9TT0ZU".repeat(10);
        let line = format!("FP PIN=1\tFID=6\tSize={}\tValid=3\tTMP={tmp}", tmp.len());
        assert_eq!(
            parse(&line),
            OperRecord::Fingerprint(TemplateRecord {
                pin: "1",
                index: 6,
                valid: true,
                duress: true,
                size: 120,
            })
        );
        let OperRecord::Face(face) = parse("FACE PIN=2\tFID=0\tSIZE=3\tVALID=0\tTMP=abc") else {
            panic!("not a face")
        };
        assert_eq!((face.pin, face.valid, face.size), ("2", false, 3));
    }

    #[test]
    fn variants_older_and_access_firmware_send() {
        // Regression: a USER line without Pri, and a FACE line without FID, were
        // rejected as cut short.
        let OperRecord::User(user) = parse("USER PIN=9\tName=Old Firmware\tPasswd=\tCard=0") else {
            panic!("not a user")
        };
        assert_eq!(
            (user.pin, user.name, user.privilege),
            ("9", "Old Firmware", 0)
        );
        let OperRecord::Face(face) = parse("FACE PIN=9\tValid=1\tSize=3\tTMP=abc") else {
            panic!("not a face")
        };
        assert_eq!((face.index, face.valid), (0, true));
        assert_eq!(
            reason("FP PIN=9\tValid=1\tTMP=abc"),
            RejectionReason::TooFewFields,
            "a finger needs its FID"
        );
        // Security PUSH names.
        let OperRecord::User(user) = parse(
            "user uid=5\tcardno=123\tpin=4\tpassword=1\tgroup=1\tstarttime=0\tendtime=0\tname=Ana\tprivilege=14\tdisable=0\tverify=0",
        ) else {
            panic!("not a user")
        };
        assert_eq!(
            (
                user.pin,
                user.name,
                user.privilege,
                user.card,
                user.has_password
            ),
            ("4", "Ana", 14, Some("123"), true)
        );
        let OperRecord::Fingerprint(finger) = parse(
            "templatev10 size=4\tuid=4\tpin=4\tfingerid=7\tvalid=1\ttemplate=abcd\tresverd=\tendtag=",
        ) else {
            panic!("not a fingerprint")
        };
        assert_eq!((finger.pin, finger.index, finger.size), ("4", 7, 4));
        // USERINFO and FINGERTMP tables may send their lines without a tag.
        let OperRecord::User(user) =
            parse_line_as("PIN=12\tName=Untagged\tPri=0", Some(Untagged::User)).unwrap()
        else {
            panic!("not a user")
        };
        assert_eq!(user.pin, "12");
        let OperRecord::Fingerprint(finger) = parse_line_as(
            "PIN=12\tFID=5\tSize=4\tValid=1\tTMP=abcd",
            Some(Untagged::Fingerprint),
        )
        .unwrap() else {
            panic!("not a fingerprint")
        };
        assert_eq!(finger.index, 5);
    }

    #[test]
    fn biodata_lines() {
        let line = "BIODATA Pin=1\tNo=0\tIndex=2\tValid=1\tDuress=0\tType=9\tMajorVer=39\
                    \tMinorVer=3\tFormat=0\tTmp=QUJDRA==";
        assert_eq!(
            parse(line),
            OperRecord::BioData(BioRecord {
                pin: "1",
                kind: BioKind::VisibleLightFace,
                no: 0,
                index: 2,
                valid: true,
                duress: false,
                size: 8,
            })
        );
        for (code, kind) in [
            (1, BioKind::Fingerprint),
            (2, BioKind::Face),
            (8, BioKind::Palm),
            (4, BioKind::Other(4)),
        ] {
            let line = format!("BIODATA Pin=3\tNo=1\tType={code}\tTmp=x");
            let OperRecord::BioData(bio) = parse(&line) else {
                panic!("not biodata")
            };
            assert_eq!(bio.kind, kind);
            assert_eq!(bio.kind.code(), code);
        }
        let OperRecord::BioData(vein) =
            parse("FVEIN Pin=4\tFID=3\tIndex=1\tValid=1\tSize=2\tTmp=ab")
        else {
            panic!("not biodata")
        };
        assert_eq!(
            (vein.kind, vein.no, vein.index),
            (BioKind::FingerVein, 3, 1)
        );
        let OperRecord::BioData(aliased) = parse("BIODATA PIN=5\tBioType=9\tValid=0\tTMP=") else {
            panic!("not biodata")
        };
        assert_eq!(
            (aliased.kind, aliased.valid),
            (BioKind::VisibleLightFace, false)
        );
    }

    #[test]
    fn photo_lines_keep_no_picture() {
        assert_eq!(
            parse("USERPIC PIN=1\tFileName=1.jpg\tSize=4\tContent=/9j/"),
            OperRecord::Photo(PhotoRecord {
                pin: "1",
                kind: PhotoKind::User,
                size: 4,
            })
        );
        assert_eq!(
            parse("BIOPHOTO PIN=2\tFileName=9_2.jpg\tType=9\tNo=0\tIndex=0\tSize=4\tContent=/9j/"),
            OperRecord::Photo(PhotoRecord {
                pin: "2",
                kind: PhotoKind::Biometric(BioKind::VisibleLightFace),
                size: 4,
            })
        );
    }

    #[test]
    fn operation_lines() {
        let at = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            parse("OPLOG 6\t0\t2026-05-21 12:55:41\t1042\t3\t1208\t0"),
            OperRecord::Operation(OperationRecord {
                code: 6,
                admin: "0",
                local_time: at("2026-05-21 12:55:41"),
                values: ["1042", "3", "1208", "0"],
            })
        );
        // A trailing empty field, and the space-separated form.
        let OperRecord::Operation(op) = parse("OPLOG 4\t1\t2026-08-31 09:19:01\t0\t0\t0\t") else {
            panic!("not an operation")
        };
        assert_eq!((op.code, op.admin, op.values[3]), (4, "1", ""));
        let OperRecord::Operation(op) = parse("OPLOG 70 0 2026-09-14 19:05:35 2 0 0 0") else {
            panic!("not an operation")
        };
        assert_eq!((op.code, op.local_time), (70, at("2026-09-14 19:05:35")));
        assert_eq!(op.values, ["2", "0", "0", "0"]);
    }

    #[test]
    fn other_tags_are_kept() {
        for (line, tag) in [
            ("IDCARD PIN=1\tIDNum=x", "IDCARD"),
            ("ERRORLOG ErrCode=D01E0001", "ERRORLOG"),
            ("1\t2020-09-30 10:10:37\t1\t0\t1\t0", "1"),
            ("WHATEVER", "WHATEVER"),
        ] {
            assert_eq!(parse(line), OperRecord::Other { tag }, "{line:?}");
        }
    }

    #[test]
    fn bodies_crlf_and_no_final_newline() {
        let body = "USER PIN=1\tName=A\tPri=0\r\nOPLOG 30\t0\t2026-06-25 16:28:28\t4\t0\t0\t0\r\n\r\n\
                    FP PIN=1\tFID=0\tSize=3\tValid=1\tTMP=abc";
        let records: Vec<_> = lines(body).map(|l| parse(l)).collect();
        assert_eq!(records.len(), 3);
        assert!(matches!(
            records[0],
            OperRecord::User(UserRecord { name: "A", .. })
        ));
        assert!(matches!(records[1], OperRecord::Operation(_)));
        assert!(matches!(
            records[2],
            OperRecord::Fingerprint(TemplateRecord { size: 3, .. })
        ));
    }

    #[test]
    fn gbk_names_are_decoded() {
        let (name, _, _) = encoding_rs::GBK.encode("张三");
        let mut body = b"USER PIN=1\tName=".to_vec();
        body.extend_from_slice(&name);
        body.extend_from_slice(b"\tPri=0\n");
        let text = decode_body(&body);
        assert!(matches!(text, Cow::Owned(_)));
        let OperRecord::User(user) = parse(lines(&text).next().unwrap()) else {
            panic!("not a user")
        };
        assert_eq!(user.name, "张三");

        let utf8 = "USER PIN=1\tName=张三\tPri=0\n";
        assert!(matches!(decode_body(utf8.as_bytes()), Cow::Borrowed(t) if t == utf8));
        // A UTF-8 body cut inside its last character stays UTF-8.
        let cut = &utf8.as_bytes()[..utf8.find('三').unwrap() + 1];
        assert_eq!(decode_body(cut), "USER PIN=1\tName=张\u{fffd}");
    }

    #[test]
    fn malformed_lines_are_rejected_with_a_reason() {
        use RejectionReason::*;
        let cases = [
            ("USER Name=A\tPri=0", TooFewFields),
            ("USER", TooFewFields),
            ("USER PIN=\tName=A\tPri=0", UnparsableBadgeNumber),
            ("USER PIN=1 2\tName=A\tPri=0", UnparsableBadgeNumber),
            ("USER PIN=ZZZZ\tName=A\tPri=0", UnparsableBadgeNumber),
            (
                "USER PIN=1234567890123456789012345\tName=A\tPri=0",
                UnparsableBadgeNumber,
            ),
            ("USER PIN=1\tName=A\tPri=admin", Other),
            ("USER PIN=1\tName=A\tPri=300", Other),
            (
                "FP PIN=1\tFID=0\tSize=1024\tValid=1\tTMP=TUlDUk9T",
                TooFewFields,
            ),
            ("FP PIN=1\tFID=0\tSize=1024\tVal", TooFewFields),
            ("FP PIN=1\tFID=x\tTMP=a", Other),
            ("FACE PIN=1\tFID=0\tVALID=9x\tTMP=a", Other),
            (
                "BIODATA Pin=1\tNo=0\tIndex=0\tValid=1\tDuress=0",
                TooFewFields,
            ),
            ("BIODATA Pin=1\tType=1\tTmp", TooFewFields),
            ("BIODATA Pin=a\tType=1\tTmp=x", UnparsableBadgeNumber),
            ("BIOPHOTO PIN=1\tType=9\tSize=4\tContent=/9", TooFewFields),
            ("USERPIC PIN=1\tFileName=1.jpg", TooFewFields),
            ("OPLOG 4\t0\t2019-01-01 10:0", TooFewFields),
            ("OPLOG 4\t0\t2019-01-01 10:0\t0\t0\t0\t0", UnparsableTime),
            (
                "OPLOG 4\t0\t2019-02-30 10:00:00\t0\t0\t0\t0",
                UnparsableTime,
            ),
            ("OPLOG x\t0\t2019-01-01 10:00:00\t0\t0\t0\t0", Other),
            ("OPLOG 4 0 2019-01-01", TooFewFields),
            ("OPLOG", TooFewFields),
        ];
        for (line, expected) in cases {
            assert_eq!(reason(line), expected, "{line:?}");
        }
    }
}
