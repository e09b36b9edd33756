//! W3C trace context across a lease: the coordinator writes the lease span's
//! `traceparent` into each lease, and the worker makes its job span a child
//! of it, so one trace shows a job from lease to result.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of `span`, or empty when tracing is not exported.
pub fn traceparent(span: &tracing::Span) -> String {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return String::new();
    }
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8())
}

/// Parses a `traceparent` header value (version 00).
pub fn parse(tp: &str) -> Option<SpanContext> {
    let mut parts = tp.trim().split('-');
    let (v, t, s, f) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if v != "00" || parts.next().is_some() || t.len() != 32 || s.len() != 16 || f.len() != 2 {
        return None;
    }
    let trace_id = TraceId::from_hex(t).ok()?;
    let span_id = SpanId::from_hex(s).ok()?;
    let flags = u8::from_str_radix(f, 16).ok()?;
    let sc = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, TraceState::default());
    sc.is_valid().then_some(sc)
}

/// Makes `span` a child of the remote span named by `tp`, if it names one.
pub fn join(span: &tracing::Span, tp: &str) {
    if let Some(sc) = parse(tp) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_w3c_traceparent() {
        let sc = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
