use bytes::Bytes;

use super::*;

fn bytes(tar: Tar) -> Vec<u8> {
    tar.finish().concat()
}

fn field(block: &[u8], range: std::ops::Range<usize>) -> &str {
    std::str::from_utf8(&block[range])
        .unwrap()
        .trim_end_matches('\0')
}

#[test]
fn a_file_has_a_valid_ustar_header_padded_contents_and_the_end_marker() {
    let mut tar = Tar::new(1_700_000_000);
    tar.file("/etc/hello.txt", 0o644, Bytes::from_static(b"hello\n"))
        .unwrap();
    let out = bytes(tar);
    assert_eq!(out.len(), 512 + 512 + 1024);
    let header = &out[..512];
    assert_eq!(field(header, 0..100), "etc/hello.txt");
    assert_eq!(field(header, 100..108), "0000644");
    assert_eq!(field(header, 124..136), "00000000006");
    assert_eq!(field(header, 136..148), format!("{:011o}", 1_700_000_000));
    assert_eq!(header[156], b'0');
    assert_eq!(&header[257..265], b"ustar\x0000");
    let mut unsummed = header.to_vec();
    unsummed[148..156].fill(b' ');
    let sum: u64 = unsummed.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(field(header, 148..155), format!("{sum:06o}"));
    assert_eq!(&out[512..518], b"hello\n");
    assert!(out[518..].iter().all(|&b| b == 0));
}

#[test]
fn directories_end_in_a_slash_and_symlinks_carry_their_target() {
    let mut tar = Tar::new(0);
    tar.dir("/tmp", 0o1777).unwrap();
    tar.symlink("/usr/bin/curl", "/usr/local/bin/meshlab")
        .unwrap();
    let out = bytes(tar);
    assert_eq!(field(&out[..512], 0..100), "tmp/");
    assert_eq!(field(&out[..512], 100..108), "0001777");
    assert_eq!(out[156], b'5');
    let link = &out[512..1024];
    assert_eq!(field(link, 0..100), "usr/bin/curl");
    assert_eq!(link[156], b'2');
    assert_eq!(field(link, 157..257), "/usr/local/bin/meshlab");
    assert_eq!(out.len(), 2 * 512 + 1024);
}

#[test]
fn large_contents_travel_as_their_own_chunk_without_a_copy() {
    let big = Bytes::from(vec![7u8; 100_000]);
    let mut tar = Tar::new(0);
    tar.file("usr/local/bin/meshlab", 0o755, big.clone())
        .unwrap();
    let chunks = tar.finish();
    assert_eq!(chunks.len(), 3, "header, contents, padding and end marker");
    assert_eq!(chunks[1].as_ptr(), big.as_ptr());
    let total: usize = chunks.iter().map(Bytes::len).sum();
    assert_eq!(total, 512 + 100_000usize.next_multiple_of(512) + 1024);
}

#[test]
fn long_paths_use_the_prefix_field_and_overlong_ones_are_refused() {
    let dir = "d".repeat(120);
    let mut tar = Tar::new(0);
    tar.file(&format!("/{dir}/file"), 0o600, Bytes::new())
        .unwrap();
    let out = bytes(tar);
    assert_eq!(field(&out, 0..100), "file");
    assert_eq!(field(&out, 345..500), dir);

    let mut tar = Tar::new(0);
    assert!(tar.file(&"x".repeat(101), 0o600, Bytes::new()).is_err());
    assert!(tar.file("/a/../etc/passwd", 0o600, Bytes::new()).is_err());
    assert!(tar.file("/", 0o600, Bytes::new()).is_err());
}
