//! Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, the coordinator and the
//! workers export spans over OTLP, and each job's span is a child of the
//! coordinator's lease span (the lease carries a W3C traceparent).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attrs: Vec<String>,
}

/// A tiny OTLP/gRPC trace receiver.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut out = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.clone())
                .map(|v| match v {
                    Value::StringValue(s) => s,
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Span {
                        service: service.clone(),
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent: s.parent_span_id,
                        attrs: s.attributes.into_iter().map(|a| a.key).collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[test]
fn a_jobs_worker_span_joins_the_coordinators_lease_trace() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let collector = Collector::default();
    let port = free_port();
    {
        let c = collector.clone();
        rt.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(c))
                .serve(([127, 0, 0, 1], port).into())
                .await
                .unwrap();
        });
    }
    let env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_string(), "200".to_string()),
    ];
    let mut c = Cluster::start_with_env(false, 5_000, env);
    c.sb.file("data.csv", &dataset(5));
    c.sb.file("s.yaml", &sim_spec(0, 1));
    c.add_worker(4, None);
    let id = c.submit("s.yaml");
    c.wait_done(&id, 10, Duration::from_secs(60));

    let linked = || {
        let spans = collector.0.lock().unwrap().clone();
        let leases: Vec<&Span> = spans
            .iter()
            .filter(|s| s.service == "candor-coordinator" && s.name == "lease")
            .collect();
        spans.iter().any(|j| {
            j.service == "candor-worker"
                && j.name == "job"
                && ["sweep.id", "job.index", "model", "condition", "attempt"]
                    .iter()
                    .all(|k| j.attrs.iter().any(|a| a == k))
                && leases.iter().any(|l| l.trace_id == j.trace_id && l.span_id == j.parent)
        })
    };
    eventually(
        Duration::from_secs(30),
        "a job span whose parent is a lease span",
        linked,
    );
}
