//! A CloudFormation template's text: read (YAML short tags, anchors) and
//! every value evaluated (intrinsics, conditions, refs between
//! resources). Never a panic, never a loop: a cycle is an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use wsgate::cloudformation::intrinsics::{Pseudo, Resolver};
use wsgate::cloudformation::yaml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(document) = yaml::parse(text) else {
        return;
    };
    let pseudo = Pseudo {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        stack_name: "fuzz".into(),
    };
    let Ok(resolver) = Resolver::new(&document.root, pseudo, &BTreeMap::new(), BTreeMap::new()) else {
        return;
    };
    for section in ["Resources", "Outputs"] {
        if let Some(serde_json::Value::Object(items)) = document.root.get(section) {
            for value in items.values() {
                let _ = resolver.resolve(value);
            }
        }
    }
});
