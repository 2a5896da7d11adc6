//! The trap pages (`traps: true`): their HTML, their links and the items they hold.
//!
//! Every link list here is the one the HTML carries, in order; the truth follows these lists
//! and a test checks them against the HTML parsed by html5ever.

use std::fmt::Write as _;

use super::site::{write_category_href, write_item_href, Layout, Trap};

/// Item title on `/trap/chain-end`, the end of the redirect chain.
pub const CHAIN_END_TITLE: &str = "Redirected Compass Rose";
/// Item title on `/trap/flaky` (500 the first time).
pub const FLAKY_TITLE: &str = "Resilient Teapot";
/// Item title on `/trap/busy` (503 the first time).
pub const BUSY_TITLE: &str = "Patient Hourglass";
/// Item title on `/trap/malformed`.
pub const MALFORMED_TITLE: &str = "Tangled Yarn Basket";
/// Item title on `/trap/latin1` (windows-1252, declared in the Content-Type header).
pub const LATIN1_TITLE: &str = "Café crème";
/// Item title on `/trap/sjis` (Shift_JIS, declared by `<meta charset>` only).
pub const SJIS_TITLE: &str = "抹茶ラテ";
/// Item title on `/trap/based/alpha` (reached through `<base href>`).
pub const BASED_ALPHA_TITLE: &str = "Base Camp Lantern";
/// Item title on `/trap/based/beta` (reached through `<base href>`).
pub const BASED_BETA_TITLE: &str = "Base Camp Stove";

/// The first page of the endless calendar, linked only from `/traps`.
pub const CALENDAR_START: (i32, u32) = (2026, 11);

/// The `<base href>` of `/trap/base`.
pub(crate) const BASE_HREF: &str = "/trap/based/";

/// The links of the traps page, `(href, text)`, in document order. `base` is the server's
/// base URL (`http://127.0.0.1:PORT`); the host-case link spells its scheme in capitals.
pub(crate) fn traps_page_links(layout: &Layout, base: &str) -> Vec<(String, &'static str)> {
    let d = layout.dup_item();
    let mut item = String::new();
    write_item_href(&mut item, d);
    let upper = match base.strip_prefix("http://") {
        Some(rest) => format!("HTTP://{rest}{item}"),
        None => format!("{base}{item}"),
    };
    let (y, m) = CALENDAR_START;
    vec![
        ("/".to_string(), "Home"),
        ("/trap/redirect/1".to_string(), "A redirect chain"),
        ("/trap/loop/a".to_string(), "A redirect loop"),
        (format!("/item/{}", layout.n + 1), "A discontinued item (404)"),
        ("/no-such-page".to_string(), "A missing page (404)"),
        (format!("/ITEM/{d}"), "The path in capitals (404: paths are case-sensitive)"),
        ("/trap/flaky".to_string(), "Fails once with 500"),
        ("/trap/busy".to_string(), "Busy once with 503"),
        ("/trap/slow".to_string(), "A very slow page"),
        ("/trap/huge".to_string(), "A very large page"),
        ("/trap/malformed".to_string(), "Broken HTML"),
        ("/trap/latin1".to_string(), "windows-1252"),
        ("/trap/sjis".to_string(), "Shift_JIS"),
        (format!("{item}#reviews"), "Reviews (same page, with a fragment)"),
        (upper, "Same page, scheme in capitals"),
        ("/private/".to_string(), "Private area"),
        ("/private/admin".to_string(), "Admin"),
        ("/private/orders?id=7".to_string(), "An order"),
        (format!("/calendar/{y}/{m}"), "Events calendar"),
        ("/files/catalog.pdf".to_string(), "Catalogue (PDF)"),
        ("/img/1.jpg".to_string(), "A photo"),
        ("/files/download?id=7".to_string(), "Download the price list"),
        ("mailto:shop@example.com".to_string(), "Write to us"),
        ("javascript:void(0)".to_string(), "Open the chat"),
        ("/trap/base".to_string(), "A page with a base href"),
    ]
}

/// The traps page.
pub(crate) fn traps_page(layout: &Layout, base: &str) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>The hard cases | Arachne Sandbox Shop</title>\n</head>\n<body>\n<h1>The hard cases</h1>\n<ul class=\"traps\">\n");
    for (href, text) in traps_page_links(layout, base) {
        let _ = writeln!(out, "<li><a href=\"{href}\">{text}</a></li>");
    }
    out.push_str("</ul>\n</body>\n</html>\n");
    out
}

/// Links of a trap page that is served as HTML (with `/trap/base`'s base href applied by
/// the reader, not here), in document order; `None` for trap routes that are not HTML.
pub(crate) fn trap_links(trap: Trap) -> Option<Vec<String>> {
    let mut cat = String::new();
    write_category_href(&mut cat, 0, 1);
    Some(match trap {
        Trap::ChainEnd
        | Trap::Flaky
        | Trap::Busy
        | Trap::Latin1
        | Trap::ShiftJis
        | Trap::BasedAlpha
        | Trap::BasedBeta
        | Trap::Slow => vec!["/".to_string(), cat],
        Trap::Malformed => {
            let mut featured = String::new();
            write_item_href(&mut featured, 1);
            vec!["/".to_string(), cat, featured]
        }
        Trap::Base => vec!["alpha".to_string(), "beta?ref=base".to_string(), "/".to_string()],
        Trap::Redirect(_) | Trap::LoopA | Trap::LoopB | Trap::Huge => return None,
    })
}

/// The item title a trap page holds, if any.
pub(crate) fn trap_item(trap: Trap) -> Option<&'static str> {
    match trap {
        Trap::ChainEnd => Some(CHAIN_END_TITLE),
        Trap::Flaky => Some(FLAKY_TITLE),
        Trap::Busy => Some(BUSY_TITLE),
        Trap::Malformed => Some(MALFORMED_TITLE),
        Trap::Latin1 => Some(LATIN1_TITLE),
        Trap::ShiftJis => Some(SJIS_TITLE),
        Trap::BasedAlpha => Some(BASED_ALPHA_TITLE),
        Trap::BasedBeta => Some(BASED_BETA_TITLE),
        _ => None,
    }
}

/// A plain UTF-8 item page for a trap (chain end, flaky, busy, base-reached items).
pub(crate) fn trap_item_page(trap: Trap) -> String {
    let title = trap_item(trap).unwrap_or("Trap");
    let (price, rating) = match trap {
        Trap::ChainEnd => ("£18.00", 4),
        Trap::Flaky => ("£24.50", 5),
        Trap::Busy => ("£9.99", 3),
        Trap::BasedAlpha => ("£31.00", 4),
        Trap::BasedBeta => ("£45.25", 2),
        _ => ("£1.00", 1),
    };
    let links = trap_links(trap).unwrap_or_default();
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title} | Arachne Sandbox Shop</title>\n</head>\n<body>\n<nav class=\"top\"><a href=\"{}\">Home</a> | <a href=\"{}\">Books</a></nav>\n<article class=\"product\">\n<h1>{title}</h1>\n<p class=\"price-line\"><span class=\"price\">{price}</span></p>\n<p class=\"rating\">{rating} of 5</p>\n<p>A trap page of the sandbox that still holds an item.</p>\n</article>\n</body>\n</html>\n",
        links[0], links[1]
    );
    out
}

/// The slow page's body (sent after the delay).
pub(crate) fn slow_page() -> String {
    let links = trap_links(Trap::Slow).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Slow</title>\n</head>\n<body>\n<h1>Finally</h1>\n<p><a href=\"{}\">Home</a> <a href=\"{}\">Books</a></p>\n</body>\n</html>\n",
        links[0], links[1]
    )
}

/// Broken HTML that html5ever (and a browser) still reads as an item: stray end tags,
/// unquoted attributes, unclosed `td`/`tr`/`p`/`li`, mis-nested `b`/`i`, the `h1` inside
/// a table cell.
pub(crate) fn malformed_page() -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>{t}</title>\n<body class=shop>\n</div></span>\n<div class=wrap><div class=product>\n<table class=layout border=0><tr><td><h1 class=title>{t}</h1><td><span class=price>£7.50</span>\n<tr><td colspan=2><p class=rating>3 of 5<p>Hand woven <b><i>wicker</b></i> basket, fits <u>six balls of yarn.\n</table></div></div></div>\n<ul class=nav><li><a href=/>Home</a><li><a href='/category/books'>Books</a><li><a href=/item/1 class=featured>Featured</a>\n</ul></p></body></html>\n",
        t = MALFORMED_TITLE
    )
}

/// The windows-1252 page, already encoded (declared only in the Content-Type header).
pub(crate) fn latin1_page() -> Vec<u8> {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<title>{t}</title>\n</head>\n<body>\n<nav><a href=\"/\">Accueil</a> <a href=\"/category/books\">Books</a></nav>\n<article class=\"product\">\n<h1>{t}</h1>\n<p><span class=\"price\">£4.20</span></p>\n<p class=\"rating\">5 of 5</p>\n<p>Un café crème onctueux, servi “à la française” — €2 de réduction… déjà très apprécié.</p>\n</article>\n</body>\n</html>\n",
        t = LATIN1_TITLE
    );
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&html);
    bytes.into_owned()
}

/// The Shift_JIS page, already encoded (declared only by `<meta charset>`).
pub(crate) fn sjis_page() -> Vec<u8> {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"Shift_JIS\">\n<title>{t}</title>\n</head>\n<body>\n<nav><a href=\"/\">ホーム</a> <a href=\"/category/books\">Books</a></nav>\n<article class=\"product\">\n<h1>{t}</h1>\n<p><span class=\"price\">￥1,200</span></p>\n<p class=\"rating\">4 of 5</p>\n<p>京都産の抹茶を使った、まろやかなラテです。</p>\n</article>\n</body>\n</html>\n",
        t = SJIS_TITLE
    );
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&html);
    bytes.into_owned()
}

/// The page with `<base href>`: its relative links resolve under `/trap/based/`.
pub(crate) fn base_page() -> String {
    let links = trap_links(Trap::Base).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<base href=\"{BASE_HREF}\">\n<title>Base camp</title>\n</head>\n<body>\n<h1>Base camp</h1>\n<ul>\n<li><a href=\"{}\">Lantern</a></li>\n<li><a href=\"{}\">Stove</a></li>\n<li><a href=\"{}\">Home</a></li>\n</ul>\n</body>\n</html>\n",
        links[0], links[1], links[2]
    )
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn month_shift(y: i32, m: u32, delta: i32) -> (i32, u32) {
    let idx = i64::from(y) * 12 + i64::from(m) - 1 + i64::from(delta);
    (idx.div_euclid(12) as i32, (idx.rem_euclid(12) + 1) as u32)
}

/// Links of calendar page `y`/`m`: previous month, next month, home.
pub(crate) fn calendar_links(y: i32, m: u32) -> Vec<String> {
    let (py, pm) = month_shift(y, m, -1);
    let (ny, nm) = month_shift(y, m, 1);
    vec![format!("/calendar/{py}/{pm}"), format!("/calendar/{ny}/{nm}"), "/".to_string()]
}

/// Calendar page `y`/`m`: a month grid with no events, and prev/next links forever.
pub(crate) fn calendar_page(y: i32, m: u32) -> String {
    let links = calendar_links(y, m);
    let name = MONTHS[(m - 1) as usize];
    let mut out = String::with_capacity(3072);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Events, {name} {y}</title>\n</head>\n<body>\n<h1>Events in {name} {y}</h1>\n<nav class=\"months\"><a href=\"{}\" rel=\"prev\">Previous month</a> | <a href=\"{}\" rel=\"next\">Next month</a> | <a href=\"{}\">Home</a></nav>\n<table class=\"month\">\n<tr>",
        links[0], links[1], links[2]
    );
    for d in 1..=28 {
        let _ = write!(out, "<td>{d}</td>");
        if d % 7 == 0 {
            out.push_str("</tr>\n<tr>");
        }
    }
    out.push_str("</tr>\n</table>\n<p>No events this month.</p>\n</body>\n</html>\n");
    out
}

/// A page under `/private/` (disallowed by robots.txt: no polite crawler asks for it).
pub(crate) fn private_page() -> String {
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Private</title>\n</head>\n<body>\n<h1>Staff only</h1>\n<p><a href=\"/\">Home</a></p>\n</body>\n</html>\n".to_string()
}

/// Links of a private page.
pub(crate) fn private_links() -> Vec<String> {
    vec!["/".to_string()]
}

/// The body of `/robots.txt`.
pub(crate) fn robots_txt(traps: bool) -> &'static str {
    if traps {
        "User-agent: *\nDisallow: /_sandbox/\nDisallow: /private/\n"
    } else {
        "User-agent: *\nDisallow: /_sandbox/\n"
    }
}

/// Path prefixes disallowed by `/robots.txt`.
pub(crate) fn disallowed(traps: bool, path: &str) -> bool {
    path.starts_with("/_sandbox/") || (traps && path.starts_with("/private/"))
}

/// A small but well-formed-looking PDF.
pub(crate) const PDF_BYTES: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\nxref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \ntrailer << /Size 4 /Root 1 0 R >>\nstartxref\n188\n%%EOF\n";

/// A tiny JPEG-looking image (SOI, JFIF APP0, EOI).
pub(crate) const JPEG_BYTES: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x48, 0x00,
    0x48, 0x00, 0x00, 0xFF, 0xD9,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_encode_cleanly() {
        let latin = latin1_page();
        let (text, _, errors) = encoding_rs::WINDOWS_1252.decode(&latin);
        assert!(!errors);
        assert!(text.contains("<h1>Café crème</h1>"));
        assert!(text.contains("€2"));
        assert!(latin.contains(&0x80), "the euro sign is 0x80 in windows-1252");
        assert!(std::str::from_utf8(&latin).is_err());
        let sjis = sjis_page();
        let (text, _, errors) = encoding_rs::SHIFT_JIS.decode(&sjis);
        assert!(!errors);
        assert!(text.contains("<h1>抹茶ラテ</h1>"));
        assert!(!text.contains("&#"), "every character is encodable");
        assert!(std::str::from_utf8(&sjis).is_err());
    }

    #[test]
    fn calendar_wraps_years() {
        assert_eq!(month_shift(2026, 1, -1), (2025, 12));
        assert_eq!(month_shift(2026, 12, 1), (2027, 1));
        assert_eq!(month_shift(0, 1, -1), (-1, 12));
        assert_eq!(calendar_links(2026, 11)[0], "/calendar/2026/10");
    }
}
