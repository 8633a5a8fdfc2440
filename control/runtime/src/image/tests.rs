use std::time::SystemTime;

use bytes::Bytes;

use super::*;

/// A minimal ELF64 header with program headers of the given types.
fn elf(program_headers: &[u32]) -> Vec<u8> {
    let mut out = vec![0u8; 64 + 56 * program_headers.len()];
    out[..6].copy_from_slice(b"\x7fELF\x02\x01");
    out[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    out[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    let count = u16::try_from(program_headers.len()).unwrap();
    out[0x38..0x3a].copy_from_slice(&count.to_le_bytes());
    for (i, kind) in program_headers.iter().enumerate() {
        out[64 + 56 * i..64 + 56 * i + 4].copy_from_slice(&kind.to_le_bytes());
    }
    out
}

#[test]
fn only_static_elf_binaries_make_images() {
    assert_eq!(check_static(&elf(&[6, 1, 1])), Ok(()));
    assert!(
        check_static(&elf(&[6, 3, 1]))
            .unwrap_err()
            .contains("dynamically linked")
    );
    assert!(
        check_static(b"#!/bin/sh\necho hi\n")
            .unwrap_err()
            .contains("not a 64-bit")
    );
    let mut truncated = elf(&[1, 1]);
    truncated.truncate(100);
    assert!(check_static(&truncated).is_err());
}

/// (path, type flag, mode, link target) of every entry of an archive.
fn entries(archive: &[u8]) -> Vec<(String, u8, String, String)> {
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .unwrap()
            .trim_end_matches('\0')
            .to_owned()
    };
    let mut out = Vec::new();
    let mut at = 0;
    while archive[at] != 0 {
        let header = &archive[at..at + 512];
        let size = usize::from_str_radix(&text(&header[124..135]), 8).unwrap();
        out.push((
            text(&header[..100]),
            header[156],
            text(&header[100..107]),
            text(&header[157..257]),
        ));
        at += 512 + size.next_multiple_of(512);
    }
    out
}

#[test]
fn the_file_system_holds_the_binary_its_links_and_what_containers_expect() {
    let chunks = rootfs(Bytes::from_static(b"binary"), SystemTime::UNIX_EPOCH).unwrap();
    let archive = chunks.concat();
    let entries = entries(&archive);
    let find = |path: &str| {
        entries
            .iter()
            .find(|e| e.0 == path)
            .unwrap_or_else(|| panic!("{path} missing from {entries:?}"))
    };
    assert_eq!(find("usr/local/bin/meshlab").1, b'0');
    assert_eq!(find("usr/local/bin/meshlab").2, "0000755");
    assert_eq!(find("usr/bin/curl").3, BINARY_PATH);
    assert_eq!(find("bin/sleep").3, BINARY_PATH);
    assert_eq!(find("tmp/").2, "0001777");
    for dir in ["etc/ssl/certs/", "var/lib/meshlab/"] {
        assert_eq!(find(dir).1, b'5');
    }
    for file in ["etc/passwd", "etc/group", "etc/nsswitch.conf"] {
        assert_eq!(find(file).2, "0000644");
    }
    let text = String::from_utf8_lossy(&archive);
    assert!(text.contains("istio-proxy:x:1337:1337:"));
    assert!(text.contains("hosts: files dns"));
}

#[test]
fn hashes_are_lowercase_hex_sha256() {
    assert_eq!(
        hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
