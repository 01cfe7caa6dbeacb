import CFerryLaunch

/// What `ferry --version` prints: the version and the git commit Scripts/release.sh built.
public enum BuildInfo {
    public static var version: String { String(cString: ferry_build_version()) }

    /// The commit, "" for a build made without Scripts/release.sh.
    public static var commit: String { String(cString: ferry_build_commit()) }

    /// "0.1.0 (commit 1a2b3c4d5e6f)", or "0.1.0 (development build)" for a plain `swift build`.
    public static var versionLine: String {
        commit.isEmpty ? "\(version) (development build)" : "\(version) (commit \(commit))"
    }
}
