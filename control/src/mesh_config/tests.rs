use super::*;

#[test]
fn the_outbound_policy_is_set_as_istioctl_sets_it_and_survives() {
    let dir = std::env::temp_dir().join(format!("meshlab-meshconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(MeshConfig::load(&dir).unwrap(), MeshConfig::default());
    let mut config = MeshConfig::default();
    config
        .set("meshConfig.outboundTrafficPolicy.mode", "REGISTRY_ONLY")
        .unwrap();
    config.save(&dir).unwrap();
    assert_eq!(
        MeshConfig::load(&dir).unwrap().outbound_traffic_policy.mode,
        OutboundMode::RegistryOnly
    );
    assert!(
        config
            .set("outboundTrafficPolicy.mode", "DENY")
            .unwrap_err()
            .to_string()
            .contains("ALLOW_ANY or REGISTRY_ONLY")
    );
    assert!(config.set("accessLogFile", "/dev/stdout").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
