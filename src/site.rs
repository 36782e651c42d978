//! Finding the built browser assets (`pkg/giftrecon.js`, `.wasm`, `.css`), wherever the server
//! was started from: operators run `giftrecon serve` in their own data folder.

use std::path::{Path, PathBuf};

/// The file every complete site build has.
const MARKER: &str = "pkg/giftrecon.js";

/// The site root to serve: the configured one if given, else the first candidate that holds a
/// build: `site/` beside the executable, `../site` (cargo's `target/<profile>/` layout), and
/// `target/site` in the working directory.
pub fn locate(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = configured {
        return Some(path.to_path_buf());
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let mut candidates = Vec::new();
    if let Some(dir) = exe_dir {
        candidates.push(dir.join("site"));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join("site"));
        }
    }
    candidates.push(PathBuf::from("target/site"));
    first_with_build(candidates)
}

fn first_with_build(candidates: Vec<PathBuf>) -> Option<PathBuf> {
    candidates
        .into_iter()
        .find(|dir| dir.join(MARKER).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_root_wins() {
        assert_eq!(
            locate(Some(Path::new("/srv/site"))),
            Some(PathBuf::from("/srv/site"))
        );
    }

    #[test]
    fn picks_the_first_candidate_that_holds_a_build() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        let built = dir.path().join("built");
        std::fs::create_dir_all(built.join("pkg")).unwrap();
        std::fs::write(built.join(MARKER), "").unwrap();
        assert_eq!(
            first_with_build(vec![empty.clone(), built.clone()]),
            Some(built)
        );
        assert_eq!(first_with_build(vec![empty]), None);
    }
}
