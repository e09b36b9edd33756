use candor_proto::auth::Token;
use tonic::Code;

use super::*;

fn refused() -> QueueError {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    QueueError::Redis(redis::RedisError::from(io))
}

fn sent(e: ServerError) -> (Code, String) {
    let s = Status::from(e);
    (s.code(), s.message().to_string())
}

#[test]
fn store_errors_keep_their_codes_and_messages() {
    assert_eq!(
        sent(QueueError::NoSuchSweep("ab12".into()).into()),
        (Code::NotFound, "no sweep with id ab12".into())
    );
    let (code, msg) = sent(refused().into());
    assert_eq!(code, Code::Unavailable, "redis down is worth retrying");
    assert!(msg.starts_with("the sweep store is unavailable: redis: "), "{msg}");
    assert_eq!(
        sent(QueueError::Protocol("odd".into()).into()),
        (Code::Internal, "unexpected reply from redis: odd".into())
    );
}

#[test]
fn request_errors_are_invalid_arguments_that_name_the_field() {
    for (e, msg) in [
        (ServerError::NotASweepId, "sweep_id: not a sweep id".to_string()),
        (ServerError::Missing("bundle"), "bundle: missing".into()),
        (ServerError::Missing("job"), "job: missing".into()),
        (
            ServerError::BundleTooLarge,
            format!("bundle: larger than {MAX_BUNDLE_BYTES} bytes"),
        ),
        (ServerError::TooManyRenewals, "jobs: at most 100000 per call".into()),
        (
            ServerError::TooManyJobs { jobs: 5 << 32 },
            format!(
                "the sweep has {} jobs; a distributed sweep may have at most {}",
                5u64 << 32,
                candor_queue::MAX_JOBS
            ),
        ),
    ] {
        assert_eq!(sent(e), (Code::InvalidArgument, msg));
    }
    assert_eq!(sweep_id("abc123").map_err(|e| e.code()), Ok("abc123"));
    for bad in ["", "a-b", &"a".repeat(65)] {
        assert!(matches!(sweep_id(bad), Err(ServerError::NotASweepId)), "{bad:?}");
    }
}

#[test]
fn deleting_a_live_sweep_says_to_cancel_it() {
    let e = ServerError::StillActive {
        id: "ab12".into(),
        state: "running".into(),
    };
    assert_eq!(
        sent(e),
        (
            Code::FailedPrecondition,
            "sweep ab12 is running; cancel it first (`candor cancel ab12`)".into()
        )
    );
}

#[test]
fn a_stored_bundle_that_does_not_parse_is_internal() {
    let json = serde_json::from_str::<Bundle>("{").unwrap_err();
    let (code, msg) = sent(ServerError::stored_bundle("ab12", json));
    assert_eq!(code, Code::Internal);
    assert!(msg.starts_with("stored bundle of ab12: "), "{msg}");
}

fn call(admit: &mut Admit, header: Option<&str>) -> Result<(), Code> {
    let mut req = Request::new(());
    if let Some(h) = header {
        req.metadata_mut().insert("authorization", h.parse().unwrap());
    }
    admit.call(req).map(|_| ()).map_err(|s| s.code())
}

#[test]
fn every_admitted_rpc_is_counted_and_no_refused_one() {
    let metrics = Arc::new(Metrics::default());
    let mut admit = Admit {
        check: Check(Token::new("s3cret")),
        metrics: metrics.clone(),
    };
    assert_eq!(call(&mut admit, Some("Bearer s3cret")), Ok(()));
    assert_eq!(call(&mut admit, Some("Bearer s3cret")), Ok(()));
    assert_eq!(call(&mut admit, Some("Bearer wrong")), Err(Code::Unauthenticated));
    assert_eq!(call(&mut admit, None), Err(Code::Unauthenticated));
    let text = metrics.render(&[]);
    assert!(text.contains("candor_coordinator_rpcs_total 2\n"), "{text}");
}

#[test]
fn a_table_too_large_is_the_submitter_s_to_fix() {
    let e = candor_core::early::DecisionTable::new(1e-6, 1 << 30).unwrap_err();
    let msg = e.to_string();
    assert_eq!(sent(e.into()), (Code::InvalidArgument, msg));
}
