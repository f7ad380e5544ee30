//! The console's answers: HTML, plain text and redirects, each with the security headers every
//! answer carries ([`secure`]): a CSP with no script at all, no framing, HSTS, `no-store`.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// An answer's body: whole, or streamed ([`stream`]); a streamed body that fails midway ends the
/// connection, so that a cut export is never taken for a whole one.
pub(super) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// An answer of the console.
pub(super) type Resp = Response<Body>;

/// A whole body.
fn full(body: Bytes) -> Body {
    Full::new(body)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A body streamed from `chunks`, of the given content type.
pub(super) fn stream<S>(status: StatusCode, chunks: S, content_type: &'static str) -> Resp
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    use futures_util::TryStreamExt;
    let body = http_body_util::StreamBody::new(chunks.map_ok(hyper::body::Frame::data));
    let mut r = Response::new(body.boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `r`, whose body keeps `guard` until it is sent or dropped (a request counts as in progress
/// while its answer streams).
pub(super) fn holding<G: Send + 'static>(r: Resp, guard: G) -> Resp {
    r.map(|b| {
        b.map_frame(move |f| {
            let _held = &guard;
            f
        })
        .boxed_unsync()
    })
}

/// Adds the security headers every answer carries.
pub(super) fn secure(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    for (k, v) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

/// A short plain-text answer: a refusal or an error.
pub(super) fn plain(status: StatusCode, text: &'static str) -> Resp {
    with_type(
        status,
        Bytes::from_static(text.as_bytes()),
        "text/plain; charset=utf-8",
    )
}

/// A page.
pub(super) fn html(status: StatusCode, body: String) -> Resp {
    with_type(status, Bytes::from(body), "text/html; charset=utf-8")
}

/// A body of the given content type.
pub(super) fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Resp {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `303 See Other` to `to`.
pub(super) fn redirect(to: &str) -> Resp {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
    );
    r
}

/// A header value from text built here (a cookie); empty if it could not be one.
pub(super) fn header_value(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""))
}
