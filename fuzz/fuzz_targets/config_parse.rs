//! `config::ChainConfig::parse` (TOML text → validated `ChainSpec`): never
//! panics; an accepted config has at least one validator, a total weight
//! that does not overflow, and a non-zero supply; an error is a typed
//! `ConfigError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin::config::{ChainConfig, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ChainConfig::parse(text, "fuzz") {
        Ok(spec) => {
            assert!(!spec.validators.is_empty());
            let mut total: u64 = 0;
            for v in &spec.validators {
                assert!(v.weight > 0);
                total = total.checked_add(v.weight).expect("validated weights sum");
            }
            for a in &spec.allocations {
                assert!(a.value.0 > 0);
            }
            assert!(spec.config.consensus.k >= 1);
            let _ = spec.validation_params();
        }
        Err(ConfigError::Parse { .. } | ConfigError::Invalid { .. }) => {}
        Err(e) => panic!("parse returned an I/O-kind error: {e}"),
    }
});
