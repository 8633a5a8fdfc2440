//! The generated Rust under `src/generated/` is checked in so that building meshlab
//! needs no `protoc`. This test regenerates it from `proto/` with protox (a
//! protobuf compiler in Rust) and tonic's code generator, and fails when the
//! checked-in files differ: edit a `.proto`, run the test with
//! `MESHLAB_REFRESH_GOLDEN=1` to rewrite them, and review the diff.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The generated file for our one protobuf package.
const GENERATED: &str = "meshlab.discovery.v1.rs";

#[test]
fn checked_in_code_matches_the_protos() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = crate_dir.join("proto");
    let protos = proto_files(&include.join("meshlab/discovery/v1"));
    let descriptors = protox::compile(&protos, [&include]).expect("the protos compile");

    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("meshlab-control-api-generated");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("create the output directory");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        // Ordered maps: the same resources always encode to the same bytes, so the
        // control plane's content-derived versions are stable.
        .btree_map(".")
        // Its Debug impl is written by hand to keep private keys out of logs.
        .skip_debug(["meshlab.discovery.v1.TlsCertificate"])
        .out_dir(&out)
        .compile_fds(descriptors)
        .expect("code generation succeeds");

    let fresh = fs::read_to_string(out.join(GENERATED)).expect("generated file exists");
    let golden_path = crate_dir.join("src/generated").join(GENERATED);
    let golden = fs::read_to_string(&golden_path).unwrap_or_default();
    if std::env::var_os("MESHLAB_REFRESH_GOLDEN").is_some() {
        if fresh != golden {
            fs::write(&golden_path, &fresh).expect("rewrite the checked-in code");
        }
        return;
    }
    assert!(
        fresh == golden,
        "{} is out of date with proto/ (hint: run `MESHLAB_REFRESH_GOLDEN=1 cargo test -p meshlab-control-api --test generated` and review the diff)",
        golden_path.display()
    );
}

/// Every `.proto` file in `dir`, sorted so that generation is deterministic.
fn proto_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read the proto directory")
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    files
}
