//! A browser-like HTTP client of the portal: keeps cookies, follows nothing by itself,
//! reads the CSRF token of the last page and sends it with forms.
#![allow(dead_code)]

use std::collections::BTreeMap;

use reqwest::header;

/// A page as the browser got it.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    /// `Location` of a redirect.
    pub location: Option<String>,
    pub html: String,
    pub headers: header::HeaderMap,
}

impl Page {
    /// Whether the page's text contains `needle` (after decoding `&amp;`-style entities
    /// that askama writes).
    pub fn has(&self, needle: &str) -> bool {
        unescape(&self.html).contains(needle)
    }

    /// The value of the first hidden input named `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        input_value(&self.html, name)
    }
}

/// Undo askama's HTML escaping (for comparisons).
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The `value` of the first `<input ... name="NAME" ... value="...">`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    let rest = &tag[v..];
    Some(unescape(&rest[..rest.find('"')?]))
}

/// A client with its own cookie jar (one browser).
pub struct Browser {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that had one.
    pub csrf: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Self::from_address(base, std::net::Ipv4Addr::LOCALHOST)
    }

    /// A browser whose connections come from `source` (another loopback address is
    /// another place, as far as the server can tell).
    pub fn from_address(base: &str, source: std::net::Ipv4Addr) -> Browser {
        Browser {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(std::net::IpAddr::V4(source))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header(header::COOKIE, self.cookie_header())
        };
        let r = req.send().await.expect("portal request");
        for v in r.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if v.contains("Max-Age=0") || val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let html = r.text().await.unwrap();
        if let Some(token) = input_value(&html, "csrf") {
            self.csrf = Some(token);
        }
        Page {
            status,
            location,
            html,
            headers,
        }
    }

    /// GET a path (no redirects followed).
    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// GET a path, following redirects (at most 5).
    pub async fn open(&mut self, path: &str) -> Page {
        let mut page = self.get(path).await;
        for _ in 0..5 {
            match (&page.status, &page.location) {
                (300..=399, Some(to)) => {
                    let to = to.clone();
                    page = self.get(&to).await;
                }
                _ => break,
            }
        }
        page
    }

    /// POST form fields exactly as given (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// POST a form with the CSRF token of the last page, following the redirect after it.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self
            .csrf
            .clone()
            .expect("a page with a CSRF token was opened first");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let page = self.post_raw(path, &all).await;
        match (&page.status, &page.location) {
            (300..=399, Some(to)) => {
                let to = to.clone();
                self.open(&to).await
            }
            _ => page,
        }
    }

    /// Sign in as an organisation's user; returns the page signed in to.
    pub async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        self.get("/login").await;
        let page = self
            .submit("/login", &[("login", login), ("password", password)])
            .await;
        assert!(
            self.cookies.contains_key("dagr_session"),
            "sign-in as {login} failed: {} {}",
            page.status,
            page.html
        );
        page
    }

    /// Sign in as a citizen with a subject token.
    pub async fn sign_in_citizen(&mut self, token: &str) -> Page {
        self.get("/citizen/login").await;
        let page = self.submit("/citizen/login", &[("token", token)]).await;
        assert!(
            self.cookies.contains_key("dagr_session"),
            "citizen sign-in failed: {} {}",
            page.status,
            page.html
        );
        page
    }
}

/// Percent-encode a form field.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The demo password of a portal user (see `src/demo_governance.rs`).
pub fn demo_password(login: &str) -> String {
    format!("demo-{login}-2026")
}

/// Text without tags, entities decoded, whitespace collapsed.
pub fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
