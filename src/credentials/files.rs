//! The two credential files of the default chain, read as credentials-go reads them:
//! the aliyun CLI's `~/.aliyun/config.json` (`providers/cli_profile.go`: `{"current": "...", "profiles": [...]}`,
//! one profile per `mode`) and the INI file `~/.alibabacloud/credentials` (`providers/profile.go`: one section per
//! profile, with a `type`). Reading yields a [`Spec`]; [`super::chain`] turns it into a source.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::sts::{self, RoleSpec};
use crate::aliyun::Credentials;

/// What a profile asks for, before anything is fetched.
#[derive(Debug, Clone)]
pub(crate) enum Spec {
    Fixed { credentials: Credentials, name: String },
    AssumeRole { base: Box<Spec>, role: RoleSpec, sts_region: String },
    EcsRole { role_name: Option<String> },
    Oidc { role: RoleSpec, provider_arn: String, token_file: PathBuf, sts_region: String },
}

/// A file that exists but cannot be used: the error names the file and the field.
pub(crate) fn bad(file: &Path, field: &str, message: impl std::fmt::Display) -> String {
    format!("{}: {field}: {message}", file.display())
}

#[derive(Deserialize)]
struct CliConfig {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

/// The fields of a profile the supported modes use (names from credentials-go's `profile` struct).
#[derive(Deserialize, Default)]
#[serde(default)]
struct CliProfile {
    name: String,
    mode: String,
    access_key_id: String,
    access_key_secret: String,
    sts_token: String,
    ram_role_arn: String,
    ram_session_name: String,
    expired_seconds: u32,
    sts_region: String,
    source_profile: String,
    ram_role_name: String,
    oidc_token_file: String,
    oidc_provider_arn: String,
    policy: String,
    external_id: String,
}

/// The profile `name` (or the file's `current`) of an aliyun CLI config.
pub(crate) fn cli_profile(file: &Path, text: &str, name: Option<&str>) -> Result<Spec, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let config: CliConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        bad(file, if field == "." { "(document)" } else { &field }, e.inner())
    })?;
    if config.profiles.is_empty() {
        return Err(bad(file, "profiles", "no profile is configured"));
    }
    let name = name.map(str::to_string).unwrap_or(config.current.clone());
    if name.is_empty() {
        return Err(bad(file, "current", "no current profile is set (pass --profile or ALIBABA_CLOUD_PROFILE)"));
    }
    cli_spec(file, &config, &name, 0)
}

fn cli_spec(file: &Path, config: &CliConfig, name: &str, depth: usize) -> Result<Spec, String> {
    if depth > 8 {
        return Err(bad(file, "source_profile", format!("profile `{name}`: the chain of source profiles loops")));
    }
    let (i, p) = config
        .profiles
        .iter()
        .enumerate()
        .find(|(_, p)| p.name == name)
        .ok_or_else(|| bad(file, "profiles", format!("no profile named `{name}`")))?;
    let field = |f: &str| format!("profiles[{i}].{f}");
    let need = |v: &str, f: &str| -> Result<String, String> {
        if v.trim().is_empty() {
            Err(bad(file, &field(f), format!("required by mode {}", p.mode)))
        } else {
            Ok(v.trim().to_string())
        }
    };
    let label = format!("aliyun CLI profile `{name}` ({})", p.mode);
    let ak = || -> Result<Credentials, String> {
        Ok(Credentials::new(
            need(&p.access_key_id, "access_key_id")?,
            need(&p.access_key_secret, "access_key_secret")?,
            None,
        ))
    };
    let role = || -> Result<RoleSpec, String> {
        let arn = need(&p.ram_role_arn, "ram_role_arn")?;
        sts::check_role_arn(&arn).map_err(|m| bad(file, &field("ram_role_arn"), m))?;
        let mut r = RoleSpec::new(arn);
        if !p.ram_session_name.trim().is_empty() {
            sts::check_session_name(p.ram_session_name.trim()).map_err(|m| bad(file, &field("ram_session_name"), m))?;
            r.session_name = p.ram_session_name.trim().to_string();
        }
        if p.expired_seconds != 0 {
            if p.expired_seconds < sts::MIN_DURATION_SECS {
                return Err(bad(file, &field("expired_seconds"), "STS sessions last at least 900 seconds"));
            }
            r.duration_secs = p.expired_seconds;
        }
        r.policy = Some(p.policy.clone()).filter(|s| !s.trim().is_empty());
        r.external_id = Some(p.external_id.clone()).filter(|s| !s.trim().is_empty());
        Ok(r)
    };
    let sts_region = p.sts_region.trim().to_string();
    match p.mode.as_str() {
        "AK" => Ok(Spec::Fixed { credentials: ak()?, name: label }),
        "StsToken" => {
            let c = ak()?;
            let token = need(&p.sts_token, "sts_token")?;
            let secret = c.secret().to_string();
            Ok(Spec::Fixed { credentials: Credentials::new(c.access_key_id, secret, Some(token)), name: label })
        }
        "RamRoleArn" => Ok(Spec::AssumeRole {
            base: Box::new(Spec::Fixed { credentials: ak()?, name: label }),
            role: role()?,
            sts_region,
        }),
        "ChainableRamRoleArn" => {
            let source = need(&p.source_profile, "source_profile")?;
            Ok(Spec::AssumeRole { base: Box::new(cli_spec(file, config, &source, depth + 1)?), role: role()?, sts_region })
        }
        "EcsRamRole" => Ok(Spec::EcsRole { role_name: Some(p.ram_role_name.trim().to_string()).filter(|r| !r.is_empty()) }),
        "OIDC" => Ok(Spec::Oidc {
            role: role()?,
            provider_arn: need(&p.oidc_provider_arn, "oidc_provider_arn")?,
            token_file: PathBuf::from(need(&p.oidc_token_file, "oidc_token_file")?),
            sts_region,
        }),
        "" => Err(bad(file, &field("mode"), "missing")),
        other => Err(bad(
            file,
            &field("mode"),
            format!("`{other}` is not supported by aliyun-janitor (use AK, StsToken, RamRoleArn, ChainableRamRoleArn, EcsRamRole or OIDC)"),
        )),
    }
}

/// The section `name` of the INI credentials file; `Ok(None)` when the file has no such section.
pub(crate) fn ini_profile(file: &Path, text: &str, name: &str) -> Result<Option<Spec>, String> {
    let ini = ini::Ini::load_from_str(text).map_err(|e| bad(file, "(document)", e))?;
    let Some(section) = ini.section(Some(name)) else { return Ok(None) };
    let field = |k: &str| format!("[{name}].{k}");
    let need = |k: &str| -> Result<String, String> {
        section
            .get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad(file, &field(k), "required for this type"))
    };
    let label = format!("credentials file profile [{name}]");
    let kind = need("type")?;
    match kind.as_str() {
        "access_key" => Ok(Some(Spec::Fixed {
            credentials: Credentials::new(need("access_key_id")?, need("access_key_secret")?, None),
            name: label,
        })),
        "ecs_ram_role" => Ok(Some(Spec::EcsRole { role_name: Some(need("role_name")?) })),
        "ram_role_arn" => {
            let arn = need("role_arn")?;
            sts::check_role_arn(&arn).map_err(|m| bad(file, &field("role_arn"), m))?;
            let session = need("role_session_name")?;
            sts::check_session_name(&session).map_err(|m| bad(file, &field("role_session_name"), m))?;
            let mut role = RoleSpec::new(arn);
            role.session_name = session;
            role.policy = section.get("policy").map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
            Ok(Some(Spec::AssumeRole {
                base: Box::new(Spec::Fixed {
                    credentials: Credentials::new(need("access_key_id")?, need("access_key_secret")?, None),
                    name: label,
                }),
                role,
                sts_region: String::new(),
            }))
        }
        other => Err(bad(
            file,
            &field("type"),
            format!("`{other}` is not supported by aliyun-janitor (use access_key, ecs_ram_role or ram_role_arn)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(text: &str, name: Option<&str>) -> Result<Spec, String> {
        cli_profile(Path::new("/h/.aliyun/config.json"), text, name)
    }

    const CONFIG: &str = r#"{"current": "dev", "profiles": [
        {"name": "dev", "mode": "AK", "access_key_id": "LTAIdev", "access_key_secret": "s-dev", "region_id": "cn-hangzhou"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "STS.x", "access_key_secret": "s", "sts_token": "tok"},
        {"name": "role", "mode": "RamRoleArn", "access_key_id": "LTAIr", "access_key_secret": "s-r",
         "ram_role_arn": "acs:ram::1234567890123456:role/janitor", "ram_session_name": "me", "expired_seconds": 1800},
        {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "role",
         "ram_role_arn": "acs:ram::2234567890123456:role/other"},
        {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "r"},
        {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop", "ram_role_arn": "acs:ram::1:role/x"},
        {"name": "sso", "mode": "CloudSSO"}
    ]}"#;

    #[test]
    fn the_current_profile_or_the_named_one_is_used() {
        match cli(CONFIG, None).unwrap() {
            Spec::Fixed { credentials, name } => {
                assert_eq!(credentials.access_key_id, "LTAIdev");
                assert_eq!(name, "aliyun CLI profile `dev` (AK)");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(cli(CONFIG, Some("sts")).unwrap(), Spec::Fixed { credentials, .. } if credentials.security_token() == Some("tok"))
        );
        match cli(CONFIG, Some("chain")).unwrap() {
            Spec::AssumeRole { base, role, .. } => {
                assert_eq!(role.arn, "acs:ram::2234567890123456:role/other");
                assert_eq!(role.session_name, "aliyun-janitor");
                match *base {
                    Spec::AssumeRole { role, .. } => {
                        assert_eq!((role.session_name.as_str(), role.duration_secs), ("me", 1800));
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(cli(CONFIG, Some("ecs")).unwrap(), Spec::EcsRole { role_name: Some(r) } if r == "r"));
    }

    #[test]
    fn a_broken_profile_names_the_file_and_the_field() {
        assert!(cli(CONFIG, Some("loop")).unwrap_err().contains("loops"));
        let e = cli(CONFIG, Some("sso")).unwrap_err();
        assert!(e.starts_with("/h/.aliyun/config.json: profiles[6].mode: `CloudSSO` is not supported"), "{e}");
        assert!(cli(CONFIG, Some("nobody")).unwrap_err().contains("no profile named `nobody`"));
        let e = cli(r#"{"current": "a", "profiles": [{"name": "a", "mode": "AK", "access_key_id": "x"}]}"#, None)
            .unwrap_err();
        assert!(e.contains("profiles[0].access_key_secret: required by mode AK"), "{e}");
        let e = cli(r#"{"profiles": [{"name": 3}]}"#, None).unwrap_err();
        assert!(e.contains("profiles[0].name"), "{e}");
        let e = cli(
            r#"{"current": "a", "profiles": [{"name": "a", "mode": "RamRoleArn", "access_key_id": "x",
            "access_key_secret": "y", "ram_role_arn": "acs:ram::1:role/r", "expired_seconds": 60}]}"#,
            None,
        )
        .unwrap_err();
        assert!(e.contains("profiles[0].expired_seconds"), "{e}");
        assert!(cli("{not json", None).unwrap_err().starts_with("/h/.aliyun/config.json: "));
    }

    fn ini(text: &str, name: &str) -> Result<Option<Spec>, String> {
        ini_profile(Path::new("/h/.alibabacloud/credentials"), text, name)
    }

    #[test]
    fn the_ini_file_has_one_section_per_profile() {
        let text = "[default]\ntype = access_key\naccess_key_id = LTAIini\naccess_key_secret = s-ini\n\n\
                    [ecs]\ntype = ecs_ram_role\nrole_name = r\n\n\
                    [role]\ntype = ram_role_arn\naccess_key_id = a\naccess_key_secret = b\n\
                    role_arn = acs:ram::1234567890123456:role/j\nrole_session_name = s1\n";
        assert!(
            matches!(ini(text, "default").unwrap(), Some(Spec::Fixed { credentials, .. }) if credentials.access_key_id == "LTAIini")
        );
        assert!(matches!(ini(text, "ecs").unwrap(), Some(Spec::EcsRole { .. })));
        assert!(matches!(ini(text, "role").unwrap(), Some(Spec::AssumeRole { .. })));
        assert!(ini(text, "other").unwrap().is_none());
        let e = ini("[default]\ntype = access_key\naccess_key_id = a\n", "default").unwrap_err();
        assert_eq!(e, "/h/.alibabacloud/credentials: [default].access_key_secret: required for this type");
        let e = ini("[default]\ntype = rsa_key_pair\n", "default").unwrap_err();
        assert!(e.contains("[default].type: `rsa_key_pair` is not supported"), "{e}");
    }
}
