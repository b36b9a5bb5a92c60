-- Resource-share invitations (issue 12); see the PostgreSQL migration of the
-- same name. Per chain and in seq order, as the link-id indexes here.
create index audit_event_request_invitation_id_idx
    on audit_event (chain_id, json_extract(request_parameters, '$.invitation_id'), seq);
