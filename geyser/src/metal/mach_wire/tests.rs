//! Unit tests of the mach message layout and receive checks: messages built by `encode`,
//! turned into what the kernel delivers, and every refusal `parse`/`check` must make.

use super::*;

/// Turns a sent message into what the receiver's buffer holds: the kernel renames the
/// rights, turns dispositions into their received form, clears the reply port it was not
/// given, and appends the requested audit trailer.
fn as_received(sent: &[u8], size: usize, names: &[u32], euid: u32, pid: i32) -> Vec<u8> {
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    buf[..size].copy_from_slice(&sent[..size]);
    put_u32(&mut buf, 8, PORT_NULL);
    let count = get_u32(&buf, HEADER_BYTES).unwrap() as usize;
    for (i, &name) in names.iter().enumerate().take(count) {
        let at = Layout::descriptor(i);
        put_u32(&mut buf, at, name);
        buf[at + 10] = match buf[at + 10] {
            MSG_TYPE_COPY_SEND | MSG_TYPE_MAKE_SEND => MSG_TYPE_MOVE_SEND,
            other => other,
        };
    }
    trailer(&mut buf, size, euid, pid);
    buf
}

fn trailer(buf: &mut [u8], size: usize, euid: u32, pid: i32) {
    let at = size;
    put_u32(buf, at, TRAILER_FORMAT_0);
    put_u32(buf, at + 4, AUDIT_TRAILER_BYTES as u32);
    put_u32(buf, at + 20 + 4, euid);
    put_u32(buf, at + 20 + 20, pid as u32);
}

fn send(ports: &[Outgoing], body: &[u8], id: i32) -> (MessageBuffer, usize) {
    let mut buf = MessageBuffer::new(MAX_SEND_BYTES);
    let size = encode(buf.bytes_mut(), 77, id, ports, body).unwrap();
    (buf, size)
}

#[test]
fn layout_offsets_follow_the_mach_structs() {
    let l = Layout::new(0, 0).unwrap();
    assert_eq!(l.length_offset(), 28);
    assert_eq!(l.body_offset(), 32);
    assert_eq!(l.size(), 32);
    let l = Layout::new(3, 5).unwrap();
    assert_eq!(Layout::descriptor(2), 28 + 24);
    assert_eq!(l.length_offset(), 64);
    assert_eq!(l.body_offset(), 68);
    assert_eq!(l.size(), 76); // 73 rounded up to 4
    assert_eq!(
        Layout::new(MAX_PORTS + CONNECT_PORTS, MAX_BODY_BYTES)
            .unwrap()
            .size(),
        MAX_SEND_BYTES
    );
    assert_eq!(MAX_SEND_BYTES % 4, 0);
}

#[test]
fn caps_refuse_big_bodies_and_many_ports() {
    assert!(matches!(
        Layout::new(0, MAX_BODY_BYTES + 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Layout::new(MAX_PORTS + CONNECT_PORTS + 1, 0),
        Err(Error::InvalidArgument { .. })
    ));
    let mut small = [0u8; 16];
    assert!(encode(&mut small, 1, MSG_ID_DATA, &[], &[]).is_err());
}

#[test]
fn encode_writes_header_descriptors_length_and_body() {
    let ports = [Outgoing {
        name: 0x1234,
        disposition: MSG_TYPE_COPY_SEND,
    }];
    let (buf, size) = send(&ports, b"hello", MSG_ID_DATA);
    let b = buf.bytes();
    assert_eq!(size, 52); // 28 + 12 + 4 + 5, rounded up to 4
    assert_eq!(get_u32(b, 0), Some(MSGH_BITS_COMPLEX | 19));
    assert_eq!(get_u32(b, 4), Some(52));
    assert_eq!(get_u32(b, 8), Some(77));
    assert_eq!(get_u32(b, 12), Some(0));
    assert_eq!(get_u32(b, 20), Some(MSG_ID_DATA as u32));
    assert_eq!(get_u32(b, 24), Some(1));
    assert_eq!(get_u32(b, 28), Some(0x1234));
    assert_eq!(&b[36..40], &[0, 0, 19, 0]);
    assert_eq!(get_u32(b, 40), Some(5));
    assert_eq!(&b[44..49], b"hello");
    assert_eq!(&b[49..52], &[0, 0, 0]);
}

#[test]
fn a_data_message_round_trips() {
    let ports = [
        Outgoing {
            name: 5,
            disposition: MSG_TYPE_COPY_SEND,
        },
        Outgoing {
            name: 6,
            disposition: MSG_TYPE_COPY_SEND,
        },
    ];
    let body: Vec<u8> = (0..=200).collect();
    let (buf, size) = send(&ports, &body, MSG_ID_DATA);
    let rx = as_received(buf.bytes(), size, &[0x103, 0x207], 501, 4242);
    let p = parse(&rx).unwrap();
    assert_eq!(p.ports, 2);
    assert_eq!(&rx[p.body.clone()], &body[..]);
    assert_eq!(
        p.sender,
        Sender {
            euid: 501,
            pid: 4242
        }
    );
    assert_eq!(port_at(&rx, &p, 1), Some((0x207, MSG_TYPE_MOVE_SEND)));
    assert_eq!(port_at(&rx, &p, 2), None);
    check(&rx, &p, Expect::Data).unwrap();
    assert!(check(&rx, &p, Expect::Connect).is_err());
}

#[test]
fn a_connect_message_carries_the_receive_right_then_a_send_right() {
    let ports = [
        Outgoing {
            name: 9,
            disposition: MSG_TYPE_MOVE_RECEIVE,
        },
        Outgoing {
            name: 10,
            disposition: MSG_TYPE_MAKE_SEND,
        },
    ];
    let (buf, size) = send(&ports, &[], MSG_ID_CONNECT);
    let rx = as_received(buf.bytes(), size, &[0x300, 0x400], 501, 7);
    let p = parse(&rx).unwrap();
    check(&rx, &p, Expect::Connect).unwrap();
    assert!(check(&rx, &p, Expect::Data).is_err());

    // Swapped rights, or a body, are refused.
    let swapped = [ports[1], ports[0]];
    let (buf, size) = send(&swapped, &[], MSG_ID_CONNECT);
    let rx = as_received(buf.bytes(), size, &[1, 2], 501, 7);
    assert!(check(&rx, &parse(&rx).unwrap(), Expect::Connect).is_err());
    let (buf, size) = send(&ports, b"x", MSG_ID_CONNECT);
    let rx = as_received(buf.bytes(), size, &[1, 2], 501, 7);
    assert!(check(&rx, &parse(&rx).unwrap(), Expect::Connect).is_err());
}

#[test]
fn dead_or_null_ports_and_reply_rights_are_refused() {
    let ports = [Outgoing {
        name: 5,
        disposition: MSG_TYPE_COPY_SEND,
    }];
    let (buf, size) = send(&ports, &[], MSG_ID_DATA);
    for name in [PORT_NULL, PORT_DEAD] {
        let rx = as_received(buf.bytes(), size, &[name], 1, 2);
        assert!(check(&rx, &parse(&rx).unwrap(), Expect::Data).is_err());
    }
    let mut rx = as_received(buf.bytes(), size, &[3], 1, 2);
    put_u32(&mut rx, 8, 0x55);
    assert!(check(&rx, &parse(&rx).unwrap(), Expect::Data).is_err());
}

#[test]
fn out_of_line_descriptors_and_bad_lengths_are_refused() {
    let ports = [Outgoing {
        name: 5,
        disposition: MSG_TYPE_COPY_SEND,
    }];
    let (buf, size) = send(&ports, b"abcd", MSG_ID_DATA);
    let good = as_received(buf.bytes(), size, &[3], 1, 2);

    let mut ool = good.clone();
    ool[Layout::descriptor(0) + 11] = 1; // MACH_MSG_OOL_DESCRIPTOR
    assert!(matches!(parse(&ool), Err(Error::Protocol(_))));

    let mut long = good.clone();
    put_u32(&mut long, Layout::new(1, 0).unwrap().length_offset(), 5);
    assert!(matches!(parse(&long), Err(Error::Protocol(_))));

    let mut huge = good.clone();
    put_u32(
        &mut huge,
        Layout::new(1, 0).unwrap().length_offset(),
        u32::MAX,
    );
    assert!(matches!(parse(&huge), Err(Error::Protocol(_))));

    let mut many = good.clone();
    put_u32(
        &mut many,
        HEADER_BYTES,
        (MAX_PORTS + CONNECT_PORTS + 1) as u32,
    );
    assert!(matches!(parse(&many), Err(Error::Protocol(_))));

    let mut oversize = good.clone();
    put_u32(&mut oversize, 4, (RECV_BUFFER_BYTES + 4) as u32);
    assert!(matches!(parse(&oversize), Err(Error::Protocol(_))));

    let mut no_trailer = good;
    put_u32(&mut no_trailer, size + 4, 8); // a bare mach_msg_trailer_t
    assert!(matches!(parse(&no_trailer), Err(Error::Protocol(_))));
}

#[test]
fn data_messages_over_the_port_cap_are_refused_after_parsing() {
    let ports: Vec<Outgoing> = (0..MAX_PORTS as u32 + 1)
        .map(|name| Outgoing {
            name: name + 1,
            disposition: MSG_TYPE_COPY_SEND,
        })
        .collect();
    let (buf, size) = send(&ports, &[], MSG_ID_DATA);
    let names: Vec<u32> = (100..100 + ports.len() as u32).collect();
    let rx = as_received(buf.bytes(), size, &names, 1, 2);
    let p = parse(&rx).unwrap();
    assert!(check(&rx, &p, Expect::Data).is_err());
}

#[test]
fn the_kernel_no_senders_notification_is_recognised() {
    // mach_no_senders_notification_t: header, NDR record (8), mscount (4): 36 bytes.
    let mut rx = vec![0u8; RECV_BUFFER_BYTES];
    put_u32(&mut rx, 0, 18 << 8); // local: send-once
    put_u32(&mut rx, 4, 36);
    put_u32(&mut rx, 20, MSG_ID_NO_SENDERS as u32);
    trailer(&mut rx, 36, 0, 0);
    let p = parse(&rx).unwrap();
    assert!(p.is_no_senders());
    assert_eq!(p.sender, Sender { euid: 0, pid: 0 });
    assert!(check(&rx, &p, Expect::Data).is_err());
}

#[test]
fn truncated_buffers_never_panic() {
    let (buf, size) = send(&[], b"xyz", MSG_ID_DATA);
    let rx = as_received(buf.bytes(), size, &[], 1, 2);
    for len in 0..size + AUDIT_TRAILER_BYTES {
        assert!(parse(&rx[..len]).is_err(), "{len}");
    }
    assert!(parse(&rx[..size + AUDIT_TRAILER_BYTES]).is_ok());
}

#[test]
fn service_names_follow_the_endpoint_rules() {
    assert_eq!(service_name("cam-1_a.b").unwrap(), "geyser.cam-1_a.b");
    assert_eq!(service_name(&"a".repeat(64)).unwrap().len(), 71);
    for bad in ["", "a b", "a/b", "é", &"a".repeat(65), "a\0b"] {
        assert!(
            matches!(service_name(bad), Err(Error::InvalidArgument { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn timeouts_round_up_and_saturate() {
    assert_eq!(timeout_ms(None), None);
    assert_eq!(timeout_ms(Some(Duration::ZERO)), Some(0));
    assert_eq!(timeout_ms(Some(Duration::from_micros(1))), Some(1));
    assert_eq!(timeout_ms(Some(Duration::from_millis(1500))), Some(1500));
    assert_eq!(
        timeout_ms(Some(Duration::from_secs(u64::MAX))),
        Some(u32::MAX)
    );
}

#[test]
fn the_trailer_options_ask_for_the_audit_trailer() {
    assert_eq!(RCV_AUDIT_TRAILER_OPTIONS, 0x0300_0000);
}

#[test]
fn buffers_are_aligned_and_grow() {
    let mut b = MessageBuffer::new(5);
    assert_eq!(b.len(), 8);
    assert_eq!(b.as_mut_ptr() as usize % 8, 0);
    b.reserve(100);
    assert!(b.len() >= 100);
    assert!(b.bytes().iter().all(|&x| x == 0));
}

#[cfg(all(
    feature = "ipc",
    any(target_os = "linux", target_os = "android", windows)
))]
#[test]
fn caps_match_the_ipc_wire_protocol() {
    assert_eq!(MAX_BODY_BYTES, crate::ipc::wire::MAX_MESSAGE_BYTES);
    assert_eq!(MAX_PORTS, crate::ipc::wire::MAX_FDS_PER_MESSAGE);
}
