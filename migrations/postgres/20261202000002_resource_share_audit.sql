-- Resource-share invitations (issue 12). Their events record the provider
-- and the invitation in request_parameters ({"provider": "AWS_RAM",
-- "invitation_id": "arn:aws:ram:…"}), and ListAuditEvents filters by both.
-- The invitation filter is served by this expression index, not partial for
-- the reason audit_event_request_link_id_idx gives (the planner's
-- statistics). The provider filter has no index of its own: two values,
-- like read_only, it narrows another filter or scans by seq.
create index audit_event_request_invitation_id_idx
    on audit_event ((request_parameters ->> 'invitation_id'));
