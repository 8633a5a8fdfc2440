use super::*;

fn round_trip(exprs: &[Expr]) -> Vec<Expr> {
    let mut list = Vec::new();
    let mut w = Writer::new(&mut list);
    for expr in exprs {
        expr.encode(&mut w);
    }
    Expr::decode_list(&list).unwrap()
}

#[test]
fn every_expression_reads_back_as_written() {
    let exprs = [
        Expr::Meta {
            key: meta::SKGID,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Other(4),
            data: vec![1, 2, 3],
        },
        Expr::Payload {
            base: base::TRANSPORT,
            offset: 0,
            len: 2,
            dreg: REG_1,
        },
        Expr::Bitwise {
            sreg: REG_1,
            dreg: 2,
            mask: vec![255, 255, 0, 0],
            xor: vec![0; 4],
        },
        Expr::Immediate {
            dreg: 2,
            data: vec![127, 0, 0, 11],
        },
        Expr::Verdict(Verdict::Goto("DOCKER".to_owned())),
        Expr::Verdict(Verdict::Accept),
        Expr::Verdict(Verdict::Drop),
        Expr::Verdict(Verdict::Other(-2)),
        Expr::Redir {
            proto_min: Some(1),
            proto_max: Some(2),
        },
        Expr::Nat {
            kind: nat::DNAT,
            family: Some(2),
            addr_min: Some(2),
            proto_min: Some(3),
        },
        Expr::Counter {
            packets: 3,
            bytes: 180,
        },
        Expr::XtTarget {
            name: "DNAT".to_owned(),
            rev: 2,
            info: vec![1, 2, 3, 4, 5],
        },
        Expr::XtMatch {
            name: "comment".to_owned(),
            rev: 0,
            info: b"hello\0".to_vec(),
        },
        Expr::Other("ct".to_owned()),
    ];
    assert_eq!(round_trip(&exprs), exprs);
}

/// One expression with the given name and data attributes.
fn raw(name: &str, data: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut list = Vec::new();
    let mut w = Writer::new(&mut list);
    let elem = w.nest(LIST_ELEM);
    w.string(EXPR_NAME, name);
    let nest = w.nest(EXPR_DATA);
    data(&mut w);
    w.end(nest);
    w.end(elem);
    list
}

#[test]
fn writes_and_other_operations_are_shown_by_name() {
    let meta_set = raw("meta", |w| {
        w.u32(META_KEY, 3);
        w.u32(3, REG_1); // NFTA_META_SREG
    });
    let payload_write = raw("payload", |w| {
        w.u32(5, REG_1); // NFTA_PAYLOAD_SREG
        w.u32(PAYLOAD_BASE, base::NETWORK);
    });
    let shift = raw("bitwise", |w| w.u32(BITWISE_OP, 1));
    for (list, name) in [
        (meta_set, "meta"),
        (payload_write, "payload"),
        (shift, "bitwise"),
    ] {
        assert_eq!(
            Expr::decode_list(&list).unwrap(),
            [Expr::Other(name.to_owned())]
        );
    }
}

#[test]
fn a_truncated_expression_is_an_error() {
    let mut list = raw("cmp", |w| w.u32(CMP_SREG, 1));
    list[0] = 200;
    assert!(Expr::decode_list(&list).is_err());
}
