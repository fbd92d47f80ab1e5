//! Where the Alibaba credentials come from, besides the environment ([`crate::aliyun::Credentials::from_env`]).
//!
//! [`aws_secret`]: on AWS Lambda, a Secrets Manager secret read at invocation time through the AWS Parameters and
//! Secrets Lambda Extension, so a rotated key is picked up without a redeploy.

pub mod aws_secret;
