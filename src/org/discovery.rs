//! The member accounts of a Resource Directory: Resource Manager (API version 2020-03-31) `ListAccounts`, or
//! `ListAccountsForParent` for one folder, paged 100 at a time (the API's largest page).

use serde::Deserialize;

use super::contract::AccountNote;
use crate::aliyun::{ApiError, ApiRequest, Client};

pub const VERSION: &str = "2020-03-31";
const PAGE_SIZE: usize = 100;

/// Membership states in which the account is a working member (Resource Manager `Account.Status`): created by
/// the directory, or invited and joined. Others (being created, being removed, expired invitations...) are
/// reported and left alone.
const ACTIVE: &[&str] = &["CreateSuccess", "InviteSuccess"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    accounts: Option<Accounts>,
    total_count: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Accounts {
    #[serde(rename = "Account", default)]
    account: Vec<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Account {
    account_id: Option<String>,
    status: Option<String>,
}

/// The active members (sorted, unique) and the members left out with why.
pub async fn members(
    api: &Client,
    folder: Option<&str>,
    max_pages: usize,
) -> Result<(Vec<String>, Vec<AccountNote>), ApiError> {
    let mut active = Vec::new();
    let mut left_out = Vec::new();
    for page in 1..=max_pages.max(1) {
        let action = if folder.is_some() { "ListAccountsForParent" } else { "ListAccounts" };
        let mut req = ApiRequest::new("resourcemanager", VERSION, action, "")
            .param("PageNumber", page.to_string())
            .param("PageSize", PAGE_SIZE.to_string());
        if let Some(f) = folder {
            req = req.param("ParentFolderId", f);
        }
        let answer: Page = api.call_json(&req).await?;
        let rows = answer.accounts.map(|a| a.account).unwrap_or_default();
        let n = rows.len();
        for row in rows {
            let Some(id) = row.account_id.filter(|a| crate::policy::accounts::is_account_id(a)) else {
                return Err(ApiError::Shape {
                    action: action.into(),
                    detail: "Accounts.Account[].AccountId missing or not digits".into(),
                });
            };
            match row.status.as_deref() {
                Some(s) if ACTIVE.contains(&s) => active.push(id),
                other => left_out.push(AccountNote {
                    account_id: id,
                    reason: format!("membership status {}", other.unwrap_or("(none)")),
                }),
            }
        }
        let total = answer.total_count.as_ref().and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        let seen = (page - 1) * PAGE_SIZE + n;
        if n < PAGE_SIZE || total.is_some_and(|t| seen as u64 >= t) {
            active.sort();
            active.dedup();
            return Ok((active, left_out));
        }
    }
    Err(ApiError::Shape { action: "ListAccounts".into(), detail: format!("more than {max_pages} pages of accounts") })
}
