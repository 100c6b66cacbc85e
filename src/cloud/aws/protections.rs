//! Route 53's record-set protections (`ListResourceRecordSetProtections`),
//! read by a request signed with the SDK's own signer.
//!
//! # Why not through `aws-sdk-route53`
//!
//! AWS added the protections in 2026; the newest `aws-sdk-route53` on the
//! registry (1.132) has no operation for them yet, while AWS's model of the
//! API does (botocore 1.44: `GET /2013-04-01/hostedzone/{Id}/rrsetprotection`,
//! query `name`, `type`, `maxresults`, `nexttoken`; the answer's
//! `ResourceRecordSetProtections/ResourceRecordSetProtection` of
//! `RecordName`, `RecordType` and `Comment`, and `NextToken`). So the one
//! read drctl needs is signed by `aws-sigv4` with the SDK's credentials,
//! sent to the SDK's Route 53 endpoint under the same retry policy, and
//! parsed from those shapes here. It is a read: the fence at the wire has
//! nothing to hold. When the crate has the operation, this module goes
//! (docs/failover.md, "Record-set protections").

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};

use super::{ROUTE53_REGION, Sdk};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CloudError, ErrorKind, HostedZone, Protection};

/// Route 53's endpoint when the settings name none.
const AWS_ENDPOINT: &str = "https://route53.amazonaws.com";
/// Protections per page (the API's most).
const PAGE: u32 = 300;
/// Pages read at most: 300 pages of 300 are far beyond the quota of
/// protections per zone, so a longer list is a token that never ends.
const MAX_PAGES: usize = 300;

/// What a list call was about, for its errors.
const SERVICE: &str = "route53";
const OPERATION: &str = "ListResourceRecordSetProtections";

/// Credentials are used again until this long before they expire (the
/// provider chain is not cached by itself: an instance role would be asked
/// at every request).
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The reader: an HTTP client, the endpoint and the SDK's credentials.
#[derive(Debug, Clone)]
pub(super) struct Protections {
    /// The client, or why it could not be built (said at the first read).
    http: Result<reqwest::Client, String>,
    endpoint: String,
    credentials: Option<SharedCredentialsProvider>,
    /// The last credentials the provider gave, used until near expiry.
    cached: Arc<Mutex<Option<Credentials>>>,
    retry: RetryPolicy,
}

impl Protections {
    pub(super) fn new(sdk: &Sdk, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("no HTTP client: {e}"));
        Self {
            http,
            cached: Arc::default(),
            endpoint: (sdk.settings.route53_endpoint.clone())
                .unwrap_or_else(|| AWS_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            credentials: sdk.base().credentials_provider(),
            retry,
        }
    }

    /// Every protection of the zone, page by page.
    pub(super) async fn list(&self, zone: &HostedZone) -> Result<Vec<Protection>, CloudError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.retry.run(|| self.page(zone, token.as_deref())).await?;
            out.extend(page.protections);
            match page.next {
                // The same token again would list the same page for ever,
                // and stopping there would call a partial list whole.
                Some(next) if Some(&next) == token.as_ref() => {
                    return Err(error(
                        zone,
                        ErrorKind::Client,
                        "the answer's NextToken repeats the request's: the list is not whole",
                    ));
                }
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
        Err(error(
            zone,
            ErrorKind::Client,
            format!("more than {MAX_PAGES} pages of protections: the NextToken never ended"),
        ))
    }

    /// One page, signed now.
    async fn page(&self, zone: &HostedZone, token: Option<&str>) -> Result<Page, CloudError> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/2013-04-01/hostedzone/{}/rrsetprotection",
            self.endpoint, zone.id
        ))
        .map_err(|e| error(zone, ErrorKind::Client, e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("maxresults", &PAGE.to_string());
        if let Some(t) = token {
            url.query_pairs_mut().append_pair("nexttoken", t);
        }
        let http = (self.http.as_ref()).map_err(|m| error(zone, ErrorKind::Client, m.clone()))?;
        let headers = self.signed(zone, url.as_str()).await?;
        let resp = (http.get(url).headers(headers).send().await)
            .map_err(|e| error(zone, ErrorKind::Connection, transport(&e)))?;
        let status = resp.status().as_u16();
        let body =
            (resp.text().await).map_err(|e| error(zone, ErrorKind::Connection, transport(&e)))?;
        if (200..300).contains(&status) {
            // Not sent again: the same answer would not read better.
            return parse(&body).map_err(|m| {
                error(
                    zone,
                    ErrorKind::Client,
                    format!("the answer could not be read: {m}"),
                )
            });
        }
        let (code, message) = error_of(&body);
        let kind = CloudError::classify(Some(status), code.as_deref());
        let mut e = error(
            zone,
            kind,
            message.unwrap_or_else(|| format!("HTTP {status}")),
        );
        if let Some(code) = code {
            e = e.with_code(code);
        }
        Err(e)
    }

    /// The headers SigV4 adds to a GET of `url` (Route 53 signs in
    /// us-east-1 as `route53`).
    async fn signed(
        &self,
        zone: &HostedZone,
        url: &str,
    ) -> Result<reqwest::header::HeaderMap, CloudError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let refused = |m: String| error(zone, ErrorKind::Auth, m);
        let Some(provider) = &self.credentials else {
            return Err(refused("no AWS credentials are configured".into()));
        };
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|at| at > SystemTime::now() + CREDENTIALS_MARGIN)
        };
        let cached = (self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
        .filter(fresh);
        let credentials = match cached {
            Some(c) => c,
            None => {
                let c = (provider.provide_credentials().await)
                    .map_err(|e| refused(format!("AWS credentials could not be loaded: {e}")))?;
                *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                c
            }
        };
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(ROUTE53_REGION)
            .name("route53")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| refused(e.to_string()))?
            .into();
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| {
                Some(format!(
                    "{}{}",
                    u.host_str()?,
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                ))
            })
            .unwrap_or_default();
        let headers = [("host", host.as_str())];
        let signable =
            SignableRequest::new("GET", url, headers.into_iter(), SignableBody::Bytes(&[]))
                .map_err(|e| refused(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| refused(e.to_string()))?
            .into_parts();
        let mut request = ::http::Request::builder()
            .uri(url)
            .body(())
            .map_err(|e| refused(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request.headers().clone())
    }
}

/// The error of a list of `zone`'s protections.
fn error(zone: &HostedZone, kind: ErrorKind, message: impl Into<String>) -> CloudError {
    CloudError::new(SERVICE, OPERATION, &zone.name, "global", kind, message)
}

/// What went wrong with a request that got no answer, in words.
fn transport(e: &reqwest::Error) -> String {
    let mut sources = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        sources.push(s.to_string());
        source = s.source();
    }
    crate::cloud::error::transport_words(e.is_timeout(), &sources).to_string()
}

/// One page of the answer.
#[derive(Debug, Default, PartialEq)]
struct Page {
    protections: Vec<Protection>,
    next: Option<String>,
}

/// Each element's path and, after its start (`None`), its text.
type Leaves = Vec<(Vec<String>, Option<String>)>;

/// An XML document as the local names of each element's ancestors and
/// itself, with `None` where the element starts and its text after
/// (namespaces dropped: the answer's is Route 53's, an emulator may write
/// none; CDATA and entities read as text).
fn texts(xml: &str) -> Result<Leaves, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    // An element's text comes in pieces around each entity (`&amp;`).
    let mut text = String::new();
    // An element's text, when it has some, before what follows it.
    fn flush(out: &mut Leaves, path: &[String], text: &mut String) {
        if !text.trim().is_empty() {
            out.push((path.to_vec(), Some(text.trim().to_string())));
        }
        text.clear();
    }
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                flush(&mut out, &path, &mut text);
                path.push(e.local_name().as_ref().to_string());
                flush(&mut out, &path, &mut text);
                out.push((path.clone(), None));
            }
            Event::Empty(e) => {
                flush(&mut out, &path, &mut text);
                let mut p = path.clone();
                p.push(e.local_name().as_ref().to_string());
                out.push((p, None));
            }
            Event::End(_) => {
                flush(&mut out, &path, &mut text);
                path.pop();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| e.to_string())? {
                Some(c) => text.push(c),
                None => text.push_str(match r.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => return Err(format!("unknown entity &{other};")),
                }),
            },
            Event::Eof if path.is_empty() => return Ok(out),
            Event::Eof => return Err(format!("the answer ends inside <{}>", path.join("/"))),
            _ => {}
        }
    }
}

/// A `ListResourceRecordSetProtectionsResponse` (pure): its root and its
/// list must be there (the model requires the list; an answer without it
/// is not "none"), and each protection its name and type.
fn parse(xml: &str) -> Result<Page, String> {
    const ROOT: &str = "ListResourceRecordSetProtectionsResponse";
    const LIST: &str = "ResourceRecordSetProtections";
    const ONE: &str = "ResourceRecordSetProtection";
    let mut page = Page::default();
    let (mut rooted, mut listed) = (false, false);
    for (path, text) in texts(xml)? {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        match (names.as_slice(), text) {
            ([ROOT], None) => rooted = true,
            ([ROOT, LIST], None) => listed = true,
            ([ROOT, "NextToken"], Some(t)) => page.next = Some(t),
            ([ROOT, LIST, ONE], None) => page.protections.push(Protection::default()),
            ([ROOT, LIST, ONE, field], Some(t)) => {
                let Some(p) = page.protections.last_mut() else {
                    return Err(format!("{field} outside a protection"));
                };
                match *field {
                    "RecordName" => p.name = super::route53::normalize_name(&t),
                    "RecordType" => p.rtype = t.to_ascii_uppercase(),
                    "Comment" => p.comment = Some(t),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !rooted {
        return Err(format!("the answer is not a {ROOT}"));
    }
    if !listed {
        return Err(format!("the answer has no {LIST}"));
    }
    if let Some(p) = (page.protections.iter()).find(|p| p.name.is_empty() || p.rtype.is_empty()) {
        return Err(format!(
            "a protection without its RecordName or RecordType ({:?} {:?})",
            p.name, p.rtype
        ));
    }
    Ok(page)
}

/// An error answer's code and message (`ErrorResponse/Error/Code` and
/// `Message`, wherever they are nested).
fn error_of(xml: &str) -> (Option<String>, Option<String>) {
    let Ok(texts) = texts(xml) else {
        return (None, None);
    };
    let find = |leaf: &str| {
        (texts.iter())
            .find(|(p, t)| t.is_some() && p.last().is_some_and(|l| l == leaf))
            .and_then(|(_, t)| t.clone())
    };
    (find("Code"), find("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer of the shapes in AWS's model (botocore 1.44.5,
    /// `ListResourceRecordSetProtectionsResponse`), as Route 53 writes
    /// them: its namespace, a comment with an entity, a token.
    const ANSWER: &str = r#"<?xml version="1.0"?>
<ListResourceRecordSetProtectionsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <ResourceRecordSetProtections>
    <ResourceRecordSetProtection>
      <RecordName>Payments.Example.com.</RecordName>
      <RecordType>A</RecordType>
      <Comment>change freeze &amp; audit (OPS-7)</Comment>
    </ResourceRecordSetProtection>
    <ResourceRecordSetProtection>
      <RecordName>\052.example.com.</RecordName>
      <RecordType>cname</RecordType>
    </ResourceRecordSetProtection>
  </ResourceRecordSetProtections>
  <NextToken>abc|2</NextToken>
</ListResourceRecordSetProtectionsResponse>"#;

    #[test]
    fn an_answer_is_read_from_the_models_shapes() {
        let page = parse(ANSWER).unwrap();
        assert_eq!(
            page.protections,
            vec![
                Protection {
                    name: "payments.example.com.".into(),
                    rtype: "A".into(),
                    comment: Some("change freeze & audit (OPS-7)".into()),
                },
                Protection {
                    name: "*.example.com.".into(),
                    rtype: "CNAME".into(),
                    comment: None,
                },
            ]
        );
        assert_eq!(page.next.as_deref(), Some("abc|2"));
    }

    #[test]
    fn an_empty_list_and_a_namespace_free_answer_are_read() {
        let page = parse(
            "<ListResourceRecordSetProtectionsResponse><ResourceRecordSetProtections/></ListResourceRecordSetProtectionsResponse>",
        )
        .unwrap();
        assert_eq!(page, Page::default());
    }

    #[test]
    fn a_protection_without_its_name_or_type_or_an_answer_of_another_shape_is_an_error_not_an_empty_list()
     {
        let wrap = |inner: &str| {
            format!(
                "<ListResourceRecordSetProtectionsResponse><ResourceRecordSetProtections>{inner}</ResourceRecordSetProtections></ListResourceRecordSetProtectionsResponse>"
            )
        };
        let no_type = wrap(
            "<ResourceRecordSetProtection><RecordName>a.example.com.</RecordName></ResourceRecordSetProtection>",
        );
        assert!(
            parse(&no_type).unwrap_err().contains("RecordType"),
            "{no_type}"
        );
        // A type without its name is not given the previous protection.
        let no_name = wrap(
            "<ResourceRecordSetProtection><RecordName>a.example.com.</RecordName><RecordType>A</RecordType></ResourceRecordSetProtection><ResourceRecordSetProtection><RecordType>TXT</RecordType></ResourceRecordSetProtection>",
        );
        assert!(parse(&no_name).unwrap_err().contains("RecordName"));
        assert!(parse("<ListResourceRecordSetProtectionsResponse><a></b>").is_err());
        assert!(parse("").unwrap_err().contains("not a"));
        assert!(parse("<Other><ResourceRecordSetProtections/></Other>").is_err());
        assert!(
            parse("<ListResourceRecordSetProtectionsResponse/>")
                .unwrap_err()
                .contains("no ResourceRecordSetProtections")
        );
        // A comment in CDATA is the comment.
        let cdata = wrap(
            "<ResourceRecordSetProtection><RecordName>a.example.com.</RecordName><RecordType>A</RecordType><Comment><![CDATA[a <b> c]]></Comment></ResourceRecordSetProtection>",
        );
        assert_eq!(
            parse(&cdata).unwrap().protections[0].comment.as_deref(),
            Some("a <b> c")
        );
    }

    #[test]
    fn an_error_answer_gives_its_code_and_message() {
        let e = r#"<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>NoSuchHostedZone</Code><Message>No hosted zone found with ID: Z1</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        assert_eq!(
            error_of(e),
            (
                Some("NoSuchHostedZone".into()),
                Some("No hosted zone found with ID: Z1".into())
            )
        );
        assert_eq!(error_of("not xml <"), (None, None));
    }
}
