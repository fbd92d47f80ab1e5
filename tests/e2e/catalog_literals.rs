//! Everything product-specific outside `src/products/` comes from the catalog: no source file outside it spells
//! a product code, event service alias, billing code or API version of the catalog as a string literal.
//! Test modules (from the first `#[cfg(test)]` on) and whole-line comments are not scanned.

use std::path::{Path, PathBuf};

use aliyun_janitor::products::catalog;

/// Files and folders not scanned (none left: event parsing and endpoints read the catalog too).
/// - `src/sim/`: the emulator keeps its own tables on purpose (it follows the official sources, not the adapters).
/// - `src/aliyun/endpoint.rs`: the SDK endpoint table (also for non-products: bssopenapi, tag, sts).
const NOT_YET_FROM_THE_CATALOG: &[&str] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_product_literal_outside_the_catalog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut words: Vec<&str> = Vec::new();
    for s in catalog().specs() {
        words.push(s.code);
        words.push(s.api_version);
        words.extend(s.event_services);
        words.extend(s.billing_codes);
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for path in files {
        let rel = path.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
        if rel.starts_with("src/products/") || NOT_YET_FROM_THE_CATALOG.iter().any(|p| rel.starts_with(p)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            for w in &words {
                if line.contains(&format!("\"{w}\"")) {
                    found.push(format!("{rel}:{}: \"{w}\"", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "product literals outside src/products/ (read them from products::catalog()):\n{}",
        found.join("\n")
    );
}
