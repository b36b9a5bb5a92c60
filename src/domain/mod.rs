//! Validated domain types for the account-link API.
//!
//! Each newtype is built only through `parse`, which enforces the pattern the
//! AWS WorkSpaces service model gives for the member of the same name
//! (<https://docs.aws.amazon.com/workspaces/latest/api/API_Types.html>), so the
//! rest of the service never sees an unchecked value.

mod account_link;
mod ids;
mod resource_share;

pub use account_link::{
    AccountLink, AccountLinkStatus, GetAccountLinkInput, ListAccountLinksInput,
    ListAccountLinksPage, Mutation, MutationKind,
};
pub use ids::{AccountId, ClientToken, FieldViolation, LinkId, NextToken};
pub use resource_share::{
    InvitationMutation, InvitationStatus, ListInvitationsInput, ListInvitationsPage, Provider,
    ResourceShareInvitation,
};
