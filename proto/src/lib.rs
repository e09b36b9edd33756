//! candor's gRPC API, package `candor.v1`. Generated from `proto/` at build
//! time; no other crate declares protobuf types.

pub mod v1 {
    tonic::include_proto!("candor.v1");
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::v1::{Cell, Interval, Report};

    #[test]
    fn a_report_survives_the_wire() {
        let r = Report {
            cells: vec![Cell {
                model: "m".into(),
                compliance: Some(Interval {
                    rate: 0.25,
                    lo: 0.1,
                    hi: 0.5,
                }),
                simulated_rate: Some(0.3),
                ..Default::default()
            }],
            ..Default::default()
        };
        let back = Report::decode(r.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.cells[0].simulated_rate, Some(0.3));
    }
}
