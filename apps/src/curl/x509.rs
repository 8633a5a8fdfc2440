//! Just enough X.509 to show the server certificate in `-v` output.
//!
//! The secure-gateway tasks have learners read curl's `* Server certificate:` block
//! (`subject: CN=httpbin.example.com; O=httpbin organization`, `issuer: ...`) to see
//! which certificate the gateway served. rustls hands us DER and no parser, and a
//! full X.509 crate would be a new dependency for four lines of trace, so this module
//! walks the few DER fields it needs. It never affects verification (rustls and
//! webpki do that); when it cannot read a certificate, it says so and moves on.

/// `subject`, `start date`, `expire date` and `issuer` lines for a DER certificate.
pub(crate) fn describe(der: &[u8]) -> Vec<String> {
    match parse(der) {
        Some(cert) => vec![
            format!("subject: {}", cert.subject),
            format!("start date: {}", cert.not_before),
            format!("expire date: {}", cert.not_after),
            format!("issuer: {}", cert.issuer),
        ],
        None => vec!["(the certificate could not be decoded for display)".to_owned()],
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const EXPLICIT_VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const BMP_STRING: u8 = 0x1E;

/// Short names of the attributes seen in certificate names, keyed by DER OID bytes.
const ATTRIBUTES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0A], "O"),
    (&[0x55, 0x04, 0x0B], "OU"),
    (
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01],
        "emailAddress",
    ),
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Summary {
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
}

/// Reads one DER element: its tag, its content and what follows it.
fn element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = data.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, data.get(header..end)?, data.get(end..)?))
}

/// Reads an element that must carry `tag`.
fn expect(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = element(data)?;
    (t == tag).then_some((content, rest))
}

fn parse(der: &[u8]) -> Option<Summary> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let (tag, _, mut rest) = element(tbs)?;
    if tag == EXPLICIT_VERSION {
        (_, _, rest) = element(rest)?; // serial number
    }
    (_, _, rest) = element(rest)?; // signature algorithm
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    let (not_before, after) = time(validity)?;
    let (not_after, _) = time(after)?;
    Some(Summary {
        subject: name(subject)?,
        issuer: name(issuer)?,
        not_before,
        not_after,
    })
}

/// Formats a Name as `CN=x; O=y`, in certificate order.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (mut set, rest) = expect(rdns, SET)?;
        rdns = rest;
        while !set.is_empty() {
            let (pair, rest) = expect(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = expect(pair, OID)?;
            let (tag, value, _) = element(value)?;
            let label = ATTRIBUTES
                .iter()
                .find(|(bytes, _)| *bytes == oid)
                .map_or_else(|| dotted(oid), |(_, label)| (*label).to_owned());
            parts.push(format!("{label}={}", text(tag, value)));
        }
    }
    Some(parts.join("; "))
}

/// Decodes a directory string; BMPString is UTF-16, the others are ASCII or UTF-8.
fn text(tag: u8, value: &[u8]) -> String {
    if tag == BMP_STRING {
        let units: Vec<u16> = value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
}

/// An OID in dotted form, for attributes without a short name.
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value = 0u64;
    for b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    let arcs: Vec<String> = arcs.iter().map(u64::to_string).collect();
    arcs.join(".")
}

/// Reads a UTCTime or GeneralizedTime as OpenSSL prints it: `Mar  2 10:00:00 2024 GMT`.
fn time(data: &[u8]) -> Option<(String, &[u8])> {
    let (tag, value, rest) = element(data)?;
    let value = std::str::from_utf8(value).ok()?;
    let digits = value.strip_suffix('Z')?;
    let (year, rest_digits) = match tag {
        UTC_TIME => {
            let yy: u32 = digits.get(..2)?.parse().ok()?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        GENERALIZED_TIME => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<u32> { rest_digits.get(i..i + 2)?.parse().ok() };
    let month = MONTHS.get(usize::try_from(field(0)?.checked_sub(1)?).ok()?)?;
    let formatted = format!(
        "{month} {:>2} {:02}:{:02}:{:02} {year} GMT",
        field(2)?,
        field(4)?,
        field(6)?,
        field(8)?
    );
    Some((formatted, rest))
}

#[cfg(test)]
mod tests;
