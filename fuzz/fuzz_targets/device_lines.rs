//! Any bytes, as the body of a device's POST, through every line parser: see
//! `gateway::fuzzing::check_device_body` for the law it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| gateway::fuzzing::check_device_body(body));
