//! Modules: the few module functions implemented inside the script crate (maxfwd,
//! part of sipmsgops, cfgutils), and the signatures of the functions of modules that do not
//! exist yet, so that real scripts compile. Calling a declared-only function is a runtime
//! error ([`crate::RunError::NotImplemented`]).

use std::sync::Arc;

use bytes::Bytes;
use sipox_sip_msg::{HeaderKind, Method};

use crate::cx::{MsgCx, Ret, Stop};
use crate::program::{Fmt, HdrName, PvRef};
use crate::registry::{
    Args, BuildFn, Call, FixupError, IntArg, ModulePv, RegexArg, Registry, parse_catalog,
};
use crate::value::{Kind, as_int};

type R = Result<Ret, Stop>;

/// Modules and signatures. Format: `module: fn(params) … | modparam names`. Param letters:
/// `i` int, `s` string, `S` static string, `v` variable, `r` regex, `a` any; `?` optional.
const CATALOG: &str = r"
sl: sl_send_reply(a,a)@RE sl_reply_error()@RE | enable_stats
signaling: send_reply(a,a) | 
tm: t_relay(a?,a?)@RF t_newtran() t_reply(a,a) t_reply_with_body(a,a,a) t_check_trans() t_check_status(r) t_local_replied(a) t_was_cancelled() t_on_failure(a) t_on_reply(a) t_on_branch(a) t_cancel_branch(a?) t_new_request(a,a,a,a,a?,a?) t_add_hdrs(a) t_add_cancel_reason(a) t_replicate(a,a?) t_flush_flags() t_anycast_replicate() t_reply_by_callid(a,a,a?,a?) t_inject_branches(a,a?) t_wait_for_new_branches(a?) t_wait_no_more_branches() t_write_req(a,a) t_write_unix(a,a) t_set_fr(a,a?) t_reset_fr() t_release() t_forward_nonack(a?) t_any_timeout() t_any_replied() t_is_retr_async_reply() | fr_timeout fr_inv_timeout wt_timer delete_timer T1_timer T2_timer restart_fr_on_each_reply onreply_avp_mode auto_100trying disable_6xx_block minor_branch_flag timer_partitions ruri_matching via1_matching syn_branch pass_provisional_replies enable_stats tm_replication_cluster cluster_param cluster_auto_cancel local_request_route local_reply_route
rr: loose_route()@R record_route(a?)@RBF record_route_preset(a,a?) add_rr_param(a) check_route_param(r) is_direction(a) | append_fromtag enable_double_rr add_username enable_socket_mismatch_warning
maxfwd: mf_process_maxfwd_header(i)@R is_maxfwd_lt(i) | max_limit
sipmsgops: append_hf(s,s?) insert_hf(s,s?) append_urihf(a,a) remove_hf(s) remove_hf_re(a) remove_hf_glob(a) is_present_hf(s) append_time() get_glob_headers_values(a,a,a) list_hdr_has_option(a,a) list_hdr_add_option(a,a) list_hdr_remove_option(a,a) append_to_reply(a) append_body_to_reply(a) change_reply_status(a,a) is_method(S) has_totag() has_body(s?) has_body_part(a?) is_privacy(a) is_audio_on_hold() is_uri_user_e164(a) sipmsg_validate(a?,a?) ruri_has_param(a,a?) ruri_add_param(a) ruri_del_param(a) ruri_tel2sip() add_body_part(a,a,a?) remove_body_part(a?,a?) get_updated_body_part(a,a?) codec_exists(a,a?) codec_delete(a,a?) codec_move_up(a,a?) codec_move_down(a,a?) codec_exists_re(a) codec_delete_re(a) codec_delete_except_re(a) codec_move_up_re(a) codec_move_down_re(a) stream_exists(a,a?) stream_delete(a,a?) sip_to_json(a) | 
textops: search(a) search_body(a) search_append(a,a) search_append_body(a,a) replace(a,a) replace_all(a,a) replace_body(a,a) replace_body_all(a,a) replace_body_atonce(a,a) subst(a) subst_uri(a) subst_user(a) subst_body(a) | 
registrar: save(a,a?,a?,a?) lookup(a,a?,a?) remove(a,a,a?,a?,a?,a?) remove_ip_port(a,a,a,a?) is_registered(a,a?) is_contact_registered(a,a?,a?,a?) is_ip_registered(a,a?,a,a?) add_sock_hdr(a) pn_process_purr(a) | default_expires min_expires max_expires default_q max_contacts tcp_persistent_flag received_avp received_param case_sensitive realm_prefix expires_max_deviation retry_after sock_hdr_name mcontact_avp attr_avp gruu_secret disable_gruu pn_enable pn_providers pn_ct_match_params pn_pnsreg_interval pn_trigger_interval pn_skip_pn_interval pn_refresh_timeout pn_enable_purr
usrloc: ul_add_key(a,a,a,a?) ul_get_key(a,a,a,a) ul_del_key(a,a,a) | working_mode_preset cluster_mode restart_persistency sql_write_mode db_url cachedb_url location_cluster nat_bflag use_domain hash_size timer_interval matching_mode cseq_delay desc_time_order pinging_mode skip_replicated_db_ops contact_refresh_timer user_column domain_column contact_column expires_column q_column callid_column cseq_column methods_column flags_column cflags_column user_agent_column received_column socket_column path_column sip_instance_column kv_store_column attr_column latency_column regen_broken_contactid max_contact_delete db_mode
auth: www_challenge(a,a?,a?) proxy_challenge(a,a?,a?) pv_www_authorize(a) pv_proxy_authorize(a) consume_credentials() is_rpid_user_e164() append_rpid_hf(a?,a?) | secret nonce_expire disable_nonce_check calculate_ha1 username_spec password_spec realm_prefix rpid_prefix rpid_suffix rpid_avp
auth_db: www_authorize(a,a) proxy_authorize(a,a) db_does_uri_exist(a,a) db_is_to_authorized(a) db_is_from_authorized(a) db_get_auth_id(a,a,a,a) | db_url calculate_ha1 password_column hash_column hash_column_sha256 hash_column_sha512t256 use_domain load_credentials user_column domain_column skip_version_check
dialog: create_dialog(a?) match_dialog(a?) validate_dialog() fix_route_dialog() load_dialog_ctx(a,a?) unload_dialog_ctx() set_dlg_profile(a,a?,a?) unset_dlg_profile(a,a?) is_in_profile(a,a?) get_profile_size(a,a?,a) set_dlg_flag(a) test_and_set_dlg_flag(a,a) reset_dlg_flag(a) is_dlg_flag_set(a) store_dlg_value(a,a) fetch_dlg_value(a,a) set_dlg_sharing_tag(a) get_dialog_info(a,a,a,a,a?) get_dialog_vals(a,a,a) get_dialogs_by_val(a,a,a,a) get_dialogs_by_profile(a,a,a,a) dlg_on_answer(a?) dlg_on_timeout(a?) dlg_on_hangup(a?) dlg_send_sequential(a?,a?,a?,a?,a?) | dlg_match_mode default_timeout rr_param db_mode db_url db_update_period profiles_with_value profiles_no_value options_ping_interval reinvite_ping_interval delete_delay dlg_extra_hdrs hash_size dialog_replication_cluster profile_replication_cluster cachedb_url race_condition_timeout timeout_avp dlg_flag
acc: do_accounting(a,a?,a?) drop_accounting(a?,a?) acc_log_request(a) acc_db_request(a,a) acc_aaa_request(a) acc_evi_request(a) acc_new_leg() acc_load_ctx_from_dlg() acc_unload_ctx_from_dlg() | early_media report_cancels detect_direction extra_fields leg_fields db_url db_table_acc db_table_missed_calls log_level log_facility aaa_url multi_leg_info cdr_flag failed_transaction_flag
dispatcher: ds_select_dst(a,a,a?,a?,a?) ds_select_domain(a,a,a?,a?,a?) ds_next_dst(a?) ds_next_domain(a?) ds_mark_dst(a?,a?) ds_count(a,a,a,a?) ds_is_in_list(a,a,a?,a?,a?,a?) ds_push_script_attrs(a,a?,a?,a?) ds_get_script_attrs(a?,a?) | db_url table_name partition ds_ping_method ds_ping_interval ds_ping_from ds_probing_mode ds_probing_threshold options_reply_codes ds_define_blacklist persistent_state attrs_avp hash_pvar cluster_id cluster_sharing_tag
drouting: do_routing(a?,a?,a?,a?,a?,a?,a?) use_next_gw(a?,a?,a?,a?) route_to_carrier(a,a?,a?,a?,a?) route_to_gw(a,a?,a?,a?) is_from_gw(a?,a?,a?,a?) goes_to_gw(a?,a?,a?,a?) dr_is_gw(a,a?,a?,a?,a?) dr_disable(a?) dr_match(a,a?,a,a?,a?,a?) | db_url drd_table drr_table drg_table drc_table use_partitions probing_interval probing_method probing_reply_codes persistent_state default_group force_dns define_blacklist enable_restart_persistency cluster_id
load_balancer: lb_start(a,a,a?,a?) lb_next(a?) lb_start_or_next(a,a,a?,a?) load_balance(a,a,a?,a?) lb_reset() lb_is_started() lb_disable_dst() lb_is_destination(a,a,a?,a?,a?) lb_count_call(a,a,a,a,a?) | db_url probing_interval probing_method probing_reply_codes lb_define_blacklist cluster_id
dialplan: dp_translate(a,a,a?,a?,a?) | db_url table_name partition
domain: is_from_local(a?) is_uri_host_local(a?) is_domain_local(a,a?) | db_url db_mode domain_table
alias_db: alias_db_lookup(a,a?) alias_db_find(a,a,a,a?) | db_url append_branches use_domain
nathelper: nat_uac_test(a) fix_nated_contact(a?) fix_nated_register() fix_nated_sdp(a,a?,a?) add_rcv_param(a?) | natping_interval ping_nated_only natping_tcp sipping_bflag sipping_from sipping_method received_avp remove_on_timeout_bflag max_pings_lost ping_threshold natping_partitions cluster_id cluster_sharing_tag
rtpproxy: rtpproxy_offer(a?,a?,a?,a?) rtpproxy_answer(a?,a?,a?,a?) rtpproxy_engage(a?,a?,a?,a?) rtpproxy_unforce(a?,a?) rtpproxy_stream2uac(a,a) rtpproxy_stream2uas(a,a) rtpproxy_stop_stream2uac() rtpproxy_stop_stream2uas() | rtpproxy_sock rtpproxy_timeout rtpproxy_tout rtpproxy_retr rtpproxy_disable_tout nortpproxy_str db_url
rtpengine: rtpengine_offer(a?,a?,a?,a?) rtpengine_answer(a?,a?,a?,a?) rtpengine_manage(a?,a?,a?,a?) rtpengine_delete(a?,a?) rtpengine_use_set(a) rtpengine_start_recording(a?) rtpengine_stop_recording(a?) | rtpengine_sock rtpengine_tout rtpengine_retr rtpengine_disable_tout setid_avp extra_id_pv error_pv notification_sock db_url
permissions: check_address(a,a,a,a,a?,a?,a?) check_source_address(a,a?,a?,a?) get_source_group(a,a?) allow_routing(a?) allow_register(a) allow_uri(a,a) | db_url address_table partition default_allow_file default_deny_file check_all_branches
presence: handle_publish(a?) handle_subscribe(a?,a?) | db_url fallback2db max_expires_subscribe max_expires_publish expires_offset clean_period db_update_period contact_user mix_dialog_presence notify_offline_body end_sub_on_timeout subs_htable_size pres_htable_size cluster_id cluster_federation_mode cluster_pres_events cluster_be_active_shtag
presence_xml: | force_active xcap_server pidf_manipulation integrated_xcap_server disable_presence disable_winfo disable_bla
sqlops: sql_query(a,a?,a?) sql_query_one(a,a?,a?) sql_select(a?,a,a?,a?,a?,a?) sql_select_one(a?,a,a?,a?,a?,a?) sql_update(a,a,a?,a?) sql_insert(a,a,a?) sql_replace(a,a,a?) sql_delete(a,a?,a?) sql_avp_load(a,a,a?,a?) sql_avp_store(a,a,a?) sql_avp_delete(a,a,a?) | db_url usr_table db_scheme use_domain uuid_column username_column domain_column attribute_column value_column type_column
rest_client: rest_get(a,a,a?,a?) rest_post(a,a,a?,a?,a?) rest_put(a,a,a?,a?,a?) rest_append_hf(a) rest_init_client_tls(a) | connection_timeout connect_poll_interval curl_timeout ssl_verifypeer ssl_verifyhost ssl_capath no_concurrent_connects max_async_transfers curl_http_version
exec: exec(a,a?,a?,a?,a?) | async setvars time_to_kill
uac: uac_replace_from(a,a?) uac_replace_to(a,a?) uac_restore_from() uac_restore_to() uac_auth(a?) uac_inc_cseq(a) | restore_mode restore_passwd rr_from_store_param rr_to_store_param force_dialog
uac_auth: | credential auth_username_avp auth_realm_avp auth_password_avp
uac_registrant: | db_url table_name timer_interval failure_retry_interval hash_size enable_clustering
topology_hiding: topology_hiding(a?) topology_hiding_match(a?) | force_dialog th_callid_passwd th_callid_prefix th_contact_encode_passwd th_contact_encode_param th_passed_contact_uri_params th_passed_contact_params
pike: pike_check_req() | sampling_time_unit reqs_density_per_unit remove_latency check_route pike_log_level
ratelimit: rl_check(a,a?,a?) rl_dec_count(a) rl_reset_count(a) | timer_interval cachedb_url pipe_replication_cluster window_size limit_per_interval expire_time hash_size default_algorithm
statistics: update_stat(a,a) reset_stat(a) stat_iter_init(a,a) stat_iter_next(a,a,a) update_stat_series(a,a,a) | variable stat_groups stat_series_profile
uuid: uuid(a,a?,a?,a?) | 
json: json_link(a,a) | 
path: add_path(a?) add_path_received(a?) | use_received enable_double_path
options: options_reply() | accept accept_encoding accept_language support
uac_redirect: get_redirects(a?,a?) set_accept_filter(a,a) set_deny_filter(a,a) | default_filter deny_filter accept_filter acc_function acc_db_table
mid_registrar: mid_registrar_save(a,a?,a?,a?,a?) mid_registrar_lookup(a,a?,a?) | mode outgoing_expires min_expires max_expires default_expires tcp_persistent_flag received_avp max_contacts
cachedb_local: cache_remove_chunk(a,a?) | cachedb_url cache_collections cache_clean_period cluster_id cluster_persistency enable_restart_persistency
cachedb_redis: | cachedb_url connect_timeout query_timeout shutdown_on_error use_tls
clusterer: cluster_send_req(a,a,a,a?) cluster_send_rpl(a,a,a,a) cluster_broadcast_req(a,a,a?) cluster_check_addr(a,a,a?) | my_node_id db_mode db_url my_node_info neighbor_node_info sharing_tag ping_interval ping_timeout node_timeout seed_fallback_interval sync_timeout sync_packet_size dispatch_jobs enable_rerouting
tracer: trace(a?,a?,a?,a?,a?,a?) | trace_id trace_on trace_local_ip
proto_hep: correlate(a,a,a,a,a) | hep_id hep_capture_id homer5_on hep_port
event_route: | 
event_datagram: | 
event_stream: | 
event_rabbitmq: | 
event_virtual: | 
event_flatstore: | 
event_routing: notify_on_event(a,a,a,a) wait_for_event(a,a,a) | 
mi_fifo: | fifo_name fifo_mode fifo_user fifo_group reply_dir pretty_printing trace_destination trace_bwlist
mi_http: | root trace_destination trace_bwlist pretty_printing
mi_html: | root http_method
mi_datagram: | socket_name children_count socket_timeout unix_socket_mode unix_socket_user unix_socket_group
mi_script: mi(a,a?,a?) | 
httpd: | ip port conn_timeout buf_size post_buf_size tls_cert_file tls_key_file tls_ciphers receive_buf_size
prometheus: | statistics prefix group_prefix delimiter group_mode group_label labels script_route script_route_avp_result
proto_udp: | udp_port
proto_tcp: | tcp_port tcp_send_timeout tcp_max_msg_chunks tcp_crlf_pingpong tcp_crlf_drop tcp_async tcp_async_max_postponed_chunks tcp_async_local_connect_timeout tcp_async_local_write_timeout tcp_parallel_handling trace_destination trace_on trace_filter_route
proto_tls: | tls_port tls_handshake_timeout tls_send_timeout tls_async tls_async_max_postponed_chunks tls_async_local_connect_timeout tls_async_handshake_timeout tls_crlf_pingpong tls_crlf_drop tls_max_msg_chunks cert_check_on_conn_reusage trace_destination trace_on trace_filter_route
proto_ws: | ws_port ws_max_msg_chunks ws_send_timeout ws_resource ws_handshake_timeout require_origin trace_destination trace_on trace_filter_route
proto_wss: | wss_port wss_max_msg_chunks wss_send_timeout wss_resource wss_handshake_timeout wss_tls_handshake_timeout require_origin trace_destination trace_on trace_filter_route
proto_sctp: | sctp_port
proto_bin: | bin_port bin_send_timeout bin_max_msg_chunks bin_async bin_async_max_postponed_chunks bin_async_local_connect_timeout bin_async_local_write_timeout
proto_bins: | bins_port bins_send_timeout bins_max_msg_chunks bins_handshake_timeout
proto_smpp: | smpp_port smpp_send_timeout
proto_msrp: | msrp_port
proto_ipsec: | port_c port_s min_spi max_spi allowed_algorithms default_client_port default_server_port
tls_mgm: is_peer_verified() | server_domain client_domain match_ip_address match_sip_domain certificate private_key ca_list ca_dir crl_dir crl_check_all ciphers_list dh_params ec_curve tls_method verify_cert require_cert tls_library db_url db_table client_tls_domain_avp client_sip_domain_avp
tls_openssl: | 
tls_wolfssl: | 
db_mysql: | exec_query_threshold timeout_interval max_db_retries max_db_queries ps_max_col_size use_tls
db_postgres: | exec_query_threshold max_db_queries timeout use_tls
db_sqlite: | alloc_limit load_extension busy_timeout
db_text: | db_mode buffer_size
db_virtual: | db_urls db_probe_time db_max_consec_retrys
db_flatstore: | flush suffix single_file
cfgutils: rand_event(i?) rand_set_prob(i) rand_reset_prob() rand_get_prob(v) sleep(i) usleep(i) check_time_rec(s,i?) get_static_lock(S) release_static_lock(S) get_dynamic_lock(s) release_dynamic_lock(s) ts_usec_delta(i,i,i,i,v) get_accurate_time(v,v,v?) set_count(a,a?) set_select_weight(a) shuffle_avps(a) abort() pkg_status() shm_status() | shvset varset shv_hash_size lock_pool_size initial_probability hash_file
uac_auth_placeholder: | 
group: is_user_in(a,a) db_get_user_group(a,a) get_user_group(a,a) | db_url table user_column domain_column group_column use_domain re_table re_exp_column re_gid_column multiple_gid aaa_url
speeddial: sd_lookup(a,a?) | db_url user_column domain_column sd_user_column sd_domain_column new_uri_column domain_prefix use_domain
siptrace: sip_trace(a?,a?,a?) | trace_on trace_flag
gflags: set_gflag(a) reset_gflag(a) is_gflag(a) | initial db_url
regex: pcre_match(a,a) pcre_match_group(a,a?) | file max_groups group_max_size pcre_caseless pcre_multiline pcre_dotall pcre_extended
userblacklist: check_user_blacklist(a,a?,a?,a?) check_user_whitelist(a,a?,a?,a?) check_blacklist(a?) check_whitelist(a?) | db_url db_table use_domain
nat_traversal: client_nat_test(a) fix_contact() nat_keepalive() | keepalive_interval keepalive_method keepalive_from keepalive_extra_headers keepalive_state_file
stir_shaken: stir_shaken_auth(a,a,a,a,a?,a?,a?) stir_shaken_verify(a,a,a?,a?,a?,a?) stir_shaken_check() stir_shaken_check_cert(a) stir_shaken_disengagement(a?,a?,a?) | auth_date_freshness verify_date_freshness ca_list ca_dir crl_list crl_dir e164_strict_mode require_date_hdr
siprec: siprec_start_recording(a,a?,a?) siprec_pause_recording() siprec_resume_recording() | skip_failover_codes
b2b_entities: ua_session_server_init(a?,a?,a?) ua_session_update(a,a,a?,a?,a?) ua_session_reply(a,a,a,a?,a?,a?,a?) ua_session_terminate(a,a?) | server_hsize client_hsize script_req_route script_reply_route db_url db_mode cachedb_url update_period b2b_key_prefix cluster_id passthru_prack advertised_contact ua_default_timeout
b2b_logic: b2b_init_request(a,a?,a?,a?,a?) b2b_server_new(a,a?,a?,a?) b2b_client_new(a,a,a?,a?,a?,a?) b2b_bridge(a,a,a?,a?) b2b_bridge_retry(a,a?) b2b_bridge_request(a,a,a?,a?) b2b_pass_request() b2b_handle_reply() b2b_send_reply(a,a,a?,a?) b2b_delete_entity() b2b_end_dlg_leg() b2b_trigger_scenario(a,a,a?,a?) | script_req_route script_reply_route db_url db_mode cachedb_url max_duration custom_headers custom_headers_regexp server_address init_callid_hdr b2bl_th_init_timeout b2bl_early_update old_entity_term_delay
";

/// Module function implementations that live in this crate.
const IMPLS: &[(&str, BuildFn)] = &[
    ("mf_process_maxfwd_header", build_maxfwd),
    ("is_maxfwd_lt", build_maxfwd_lt),
    ("is_method", build_is_method),
    ("has_totag", |_| Ok(Box::new(HasTotag))),
    ("has_body", build_has_body),
    ("is_present_hf", |mut a| {
        Ok(Box::new(IsPresentHf(a.fmt(0).unwrap_or_default())))
    }),
    ("append_hf", |mut a| {
        Ok(Box::new(AppendHf(a.fmt(0).unwrap_or_default(), a.fmt(1))))
    }),
    ("remove_hf", |mut a| {
        Ok(Box::new(RemoveHf(a.fmt(0).unwrap_or_default())))
    }),
    ("rand_event", |mut a| Ok(Box::new(RandEvent(a.int(0))))),
    ("rand_set_prob", |mut a| {
        Ok(Box::new(RandSetProb(a.int(0).unwrap_or(IntArg::Const(10)))))
    }),
    ("rand_reset_prob", |_| Ok(Box::new(RandResetProb))),
    ("rand_get_prob", |mut a| {
        let v = a
            .var(0)
            .ok_or_else(|| FixupError::arg(0, "expected a variable"))?;
        Ok(Box::new(RandGetProb(v)))
    }),
    ("sleep", |mut a| {
        Ok(Box::new(Sleep(
            a.int(0).unwrap_or(IntArg::Const(0)),
            1_000_000,
        )))
    }),
    ("usleep", |mut a| {
        Ok(Box::new(Sleep(a.int(0).unwrap_or(IntArg::Const(0)), 1)))
    }),
    ("check_time_rec", build_check_time_rec),
    ("get_static_lock", |mut a| {
        Ok(Box::new(Lock(
            Fmt::literal(&a.static_str(0).unwrap_or_default()),
            true,
        )))
    }),
    ("release_static_lock", |mut a| {
        Ok(Box::new(Lock(
            Fmt::literal(&a.static_str(0).unwrap_or_default()),
            false,
        )))
    }),
    ("get_dynamic_lock", |mut a| {
        Ok(Box::new(Lock(a.fmt(0).unwrap_or_default(), true)))
    }),
    ("release_dynamic_lock", |mut a| {
        Ok(Box::new(Lock(a.fmt(0).unwrap_or_default(), false)))
    }),
    ("ts_usec_delta", |mut a| {
        let args = [a.int(0), a.int(1), a.int(2), a.int(3)].map(|x| x.unwrap_or(IntArg::Const(0)));
        let v = a
            .var(4)
            .ok_or_else(|| FixupError::arg(4, "expected a variable"))?;
        Ok(Box::new(TsUsecDelta(Box::new(args), v)))
    }),
    ("get_accurate_time", |mut a| {
        let s = a
            .var(0)
            .ok_or_else(|| FixupError::arg(0, "expected a variable"))?;
        let u = a
            .var(1)
            .ok_or_else(|| FixupError::arg(1, "expected a variable"))?;
        Ok(Box::new(AccurateTime(s, u, a.var(2))))
    }),
];

/// Adds every module to the registry.
pub(crate) fn register(r: &mut Registry) {
    for m in parse_catalog(CATALOG, IMPLS) {
        r.add_module(m);
    }
    crate::textops::register(r);
    crate::sipmsgops::register(r);
    crate::sdpops::register(r);
    crate::bodyparts::register(r);
}

/// Pseudo-variables of modules not built yet: `module: $name …` (a trailing `*` matches a
/// prefix).
const PV_CATALOG: &str = r"
tm: $T_branch_idx $T_reply_code $T_reply_reason $T_ruri $T_fr_timeout $T_fr_inv_timeout $T_id $T_branch_last_reply_code $bavp $T_branch $T_inject_branches
dialog: $DLG_status $DLG_lifetime $DLG_dir $DLG_did $DLG_flags $DLG_count $DLG_timeout $DLG_del_delay $DLG_end_reason $DLG_json $DLG_ctx_json $dlg_val $DLG_id
acc: $acc_extra $acc_leg $acc_current_leg
rr: $rr_params
json: $json $json_pretty $json_compact
statistics: $stat
uuid: $uuid
signaling: $sig_local_totag
rtpengine: $rtpstat $rtpquery
rtpproxy: $rtpstat
tls_mgm: $tls_*
sql_cacher: $sql_cached_value
topology_hiding: $TH_callee_callid
ratelimit: $rl_count
b2b_logic: $b2b_logic.key $b2b_logic.entity $b2b_logic.ctx $b2b_logic.scenario
dispatcher: $ds_attrs
load_balancer: $lb_attrs
drouting: $dr_attrs
xml: $xml
proto_hep: $hep_net $HEPVERSION $hep
stir_shaken: $identity
siprec: $siprec
registrar: $reg_attrs
";

/// A module pseudo-variable: `(module, spelling)` when the name is known.
pub(crate) fn module_pv_owner(name: &str) -> Option<(&'static str, &'static str)> {
    for line in PV_CATALOG.lines() {
        let Some((m, pvs)) = line.split_once(':') else {
            continue;
        };
        for pv in pvs.split_whitespace() {
            let p = pv.trim_start_matches('$');
            let hit = match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => p == name,
            };
            if hit {
                return Some((m.trim(), pv));
            }
        }
    }
    None
}

/// All module pseudo-variable names (for hints).
pub(crate) fn module_pv_names() -> impl Iterator<Item = &'static str> {
    PV_CATALOG
        .lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, p)| p.split_whitespace())
        .map(|p| p.trim_start_matches('$').trim_end_matches('*'))
}

/// A pseudo-variable of a module that is declared but not implemented: reads give `NULL`
/// and log an error.
#[derive(Debug)]
pub(crate) struct DeclaredPv {
    pub(crate) name: &'static str,
    pub(crate) module: &'static str,
}

impl ModulePv for DeclaredPv {
    fn get(&self, cx: &mut MsgCx, _out: &mut Vec<u8>) -> Kind {
        let line = format!(
            "ERROR: pseudo-variable {} of module {} is declared but not implemented yet",
            self.name, self.module
        );
        cx.emit_log(-1, line.as_bytes());
        Kind::Null
    }
}

/// Resolves a module pseudo-variable for a loaded module.
pub(crate) fn module_pv(
    name: &str,
    loaded: &[String],
) -> Result<Option<Arc<dyn ModulePv>>, String> {
    match module_pv_owner(name) {
        Some((m, pv)) if loaded.iter().any(|l| l == m) => Ok(Some(Arc::new(DeclaredPv {
            name: pv,
            module: m,
        }))),
        Some((m, _)) => Err(format!(
            "${name} is provided by module {m}: add loadmodule \"{m}.so\""
        )),
        None => Ok(None),
    }
}

// ----- maxfwd -----

/// `"0".."255"` without allocation: slices of a static table of zero-padded numbers.
const fn padded() -> [u8; 768] {
    let mut a = [0u8; 768];
    let mut i = 0;
    while i < 256 {
        a[3 * i] = b'0' + (i / 100) as u8;
        a[3 * i + 1] = b'0' + (i / 10 % 10) as u8;
        a[3 * i + 2] = b'0' + (i % 10) as u8;
        i += 1;
    }
    a
}

static PADDED: [u8; 768] = padded();

fn small_num(n: u32) -> Bytes {
    let n = n.min(255) as usize;
    let skip = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    Bytes::from_static(&PADDED[3 * n + skip..3 * n + 3])
}

#[derive(Debug)]
struct MaxFwd(IntArg);

fn build_maxfwd(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let m = a
        .int(0)
        .ok_or_else(|| FixupError::arg(0, "expected the maximum value"))?;
    if let IntArg::Const(v) = m
        && !(1..=255).contains(&v)
    {
        return Err(FixupError::arg(
            0,
            format!("max value {v} out of range 1..255"),
        ));
    }
    Ok(Box::new(MaxFwd(m)))
}

impl Call for MaxFwd {
    /// 2: header added; 1: decremented; -1: it was 0 (too many hops); -2: error.
    fn call(&self, cx: &mut MsgCx) -> R {
        let max = cx
            .eval_int(&self.0)
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(70)
            .min(255);
        let Some(m) = cx.msg.as_mut() else {
            return Ok(Ret(-2));
        };
        if !m.is_request() {
            return Ok(Ret(-2));
        }
        let Some(h) = m.header(HeaderKind::MaxForwards).copied() else {
            m.append_header(b"Max-Forwards", &small_num(max));
            return Ok(Ret(2));
        };
        let Ok(Some(v)) = m.max_forwards() else {
            return Ok(Ret(-2));
        };
        if v == 0 {
            return Ok(Ret(-1));
        }
        // Values above the limit (max_limit, 256) are clamped before decrementing.
        let nv = v.min(256) - 1;
        m.replace_header_value(&h, small_num(nv));
        Ok(Ret(1))
    }
}

#[derive(Debug)]
struct MaxFwdLt(IntArg);

fn build_maxfwd_lt(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    Ok(Box::new(MaxFwdLt(
        a.int(0)
            .ok_or_else(|| FixupError::arg(0, "expected a number"))?,
    )))
}

impl Call for MaxFwdLt {
    /// 1: value below the limit; -1: not below; -2: header missing or bad.
    fn call(&self, cx: &mut MsgCx) -> R {
        let lim = cx.eval_int(&self.0).unwrap_or(0);
        let Some(m) = cx.msg.as_ref() else {
            return Ok(Ret(-2));
        };
        match m.max_forwards() {
            Ok(Some(v)) => Ok(Ret::of(i64::from(v) < lim)),
            _ => Ok(Ret(-2)),
        }
    }
}

// ----- sipmsgops -----

/// `is_method("INVITE|REGISTER")`: known methods become a bit set at load.
#[derive(Debug)]
struct IsMethod {
    mask: u32,
    others: Vec<Box<[u8]>>,
}

fn method_bit(m: Method) -> u32 {
    match m {
        Method::Invite => 1,
        Method::Ack => 1 << 1,
        Method::Bye => 1 << 2,
        Method::Cancel => 1 << 3,
        Method::Register => 1 << 4,
        Method::Options => 1 << 5,
        Method::Info => 1 << 6,
        Method::Update => 1 << 7,
        Method::Prack => 1 << 8,
        Method::Subscribe => 1 << 9,
        Method::Notify => 1 << 10,
        Method::Publish => 1 << 11,
        Method::Message => 1 << 12,
        Method::Refer => 1 << 13,
        _ => 0,
    }
}

fn build_is_method(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let s = a
        .static_str(0)
        .ok_or_else(|| FixupError::arg(0, "expected method names"))?;
    let mut mask = 0;
    let mut others = Vec::new();
    for name in s.split(|&c| c == b'|').map(<[u8]>::trim_ascii) {
        if name.is_empty() {
            return Err(FixupError::arg(0, "empty method name"));
        }
        let up = name.to_ascii_uppercase();
        let m = Method::classify(&up);
        let bit = method_bit(m);
        if bit == 0 {
            others.push(up.into());
        } else {
            mask |= bit;
        }
    }
    Ok(Box::new(IsMethod { mask, others }))
}

impl Call for IsMethod {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(m) = cx.msg.as_ref() else {
            return Ok(Ret::FALSE);
        };
        let (method, text) = if m.is_request() {
            (m.method().unwrap_or(Method::Other), m.method_bytes())
        } else {
            let t = m.method_bytes();
            (Method::classify(t), t)
        };
        let bit = method_bit(method);
        let hit = if bit != 0 {
            self.mask & bit != 0
        } else {
            self.others.iter().any(|o| o.eq_ignore_ascii_case(text))
        };
        Ok(Ret::of(hit))
    }
}

#[derive(Debug)]
struct HasTotag;

impl Call for HasTotag {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(m) = cx.msg.as_ref() else {
            return Ok(Ret::FALSE);
        };
        Ok(Ret::of(
            m.to()
                .ok()
                .and_then(|t| t.tag())
                .is_some_and(|t| !t.is_empty()),
        ))
    }
}

#[derive(Debug)]
struct HasBody(Option<Fmt>);

fn build_has_body(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    Ok(Box::new(HasBody(a.fmt(0))))
}

impl Call for HasBody {
    fn call(&self, cx: &mut MsgCx) -> R {
        let Some(m) = cx.msg.as_ref() else {
            return Ok(Ret::FALSE);
        };
        if m.body().is_empty() {
            return Ok(Ret::FALSE);
        }
        let Some(f) = &self.0 else {
            return Ok(Ret::TRUE);
        };
        let want = f.as_const().map(<[u8]>::to_vec).unwrap_or_default();
        let ct = m
            .value_of(HeaderKind::ContentType)
            .unwrap_or(b"application/sdp");
        let ct = ct.split(|&c| c == b';').next().unwrap_or(ct).trim_ascii();
        if ct.eq_ignore_ascii_case(&want) {
            return Ok(Ret::TRUE);
        }
        // multipart: search part content types
        Ok(Ret::of(
            ct.len() >= 10 && ct[..10].eq_ignore_ascii_case(b"multipart/") && {
                let body = m.body();
                body.windows(want.len().max(1))
                    .any(|w| w.eq_ignore_ascii_case(&want))
            },
        ))
    }
}

#[derive(Debug)]
struct IsPresentHf(Fmt);

impl Call for IsPresentHf {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut n = cx.take_buf();
        cx.eval_fmt(&self.0, &mut n);
        let hit = cx.msg.as_ref().is_some_and(|m| {
            let h = HdrName {
                kind: HeaderKind::classify(&n),
                name: n.as_slice().into(),
            };
            crate::interp::headers_named(m, &h).next().is_some()
        });
        cx.give_buf(n);
        Ok(Ret::of(hit))
    }
}

#[derive(Debug)]
struct AppendHf(Fmt, Option<Fmt>);

impl Call for AppendHf {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut t = Vec::new();
        cx.eval_fmt(&self.0, &mut t);
        let anchor = self.1.as_ref().map(|f| {
            let mut a = Vec::new();
            cx.eval_fmt(f, &mut a);
            a
        });
        let Some(m) = cx.msg.as_mut() else {
            return Ok(Ret::FALSE);
        };
        match anchor {
            None => m.append_raw_headers(Bytes::from(t)),
            Some(a) => {
                let h = HdrName {
                    kind: HeaderKind::classify(&a),
                    name: a.as_slice().into(),
                };
                // after the first such header; after the last header when there is none
                let first = crate::interp::headers_named(m, &h).next().copied();
                match first {
                    Some(hd) => m.insert_at(hd.end, Bytes::from(t)),
                    None => m.append_raw_headers(Bytes::from(t)),
                }
            }
        }
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RemoveHf(Fmt);

impl Call for RemoveHf {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut n = Vec::new();
        cx.eval_fmt(&self.0, &mut n);
        let Some(m) = cx.msg.as_mut() else {
            return Ok(Ret::FALSE);
        };
        let h = HdrName {
            kind: HeaderKind::classify(&n),
            name: n.as_slice().into(),
        };
        let hs: Vec<sipox_sip_msg::Header> = crate::interp::headers_named(m, &h).copied().collect();
        for x in &hs {
            m.remove_header(x);
        }
        Ok(if hs.is_empty() {
            Ret::FALSE
        } else {
            Ret(i32::try_from(hs.len()).unwrap_or(1))
        })
    }
}

// ----- cfgutils -----

#[derive(Debug)]
struct RandEvent(Option<IntArg>);

impl Call for RandEvent {
    fn call(&self, cx: &mut MsgCx) -> R {
        let p = match &self.0 {
            Some(a) => cx.eval_int(a).unwrap_or(0).clamp(0, 100),
            None => i64::from(cx.prog.shared.rand_prob()),
        };
        let r = i64::try_from(cx.random() % 100).unwrap_or(0);
        Ok(Ret::of(r < p))
    }
}

#[derive(Debug)]
struct RandSetProb(IntArg);

impl Call for RandSetProb {
    fn call(&self, cx: &mut MsgCx) -> R {
        let p = cx.eval_int(&self.0).unwrap_or(0);
        if !(0..=100).contains(&p) {
            return Ok(Ret::FALSE);
        }
        cx.prog.shared.set_rand_prob(u32::try_from(p).unwrap_or(0));
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RandResetProb;

impl Call for RandResetProb {
    fn call(&self, cx: &mut MsgCx) -> R {
        cx.prog.shared.reset_rand_prob();
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct RandGetProb(Box<PvRef>);

impl Call for RandGetProb {
    fn call(&self, cx: &mut MsgCx) -> R {
        let p = i64::from(cx.prog.shared.rand_prob());
        let mut b = cx.take_buf();
        cx.set_var(&self.0, Kind::Int(p), &mut b);
        cx.give_buf(b);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct Sleep(IntArg, u64);

impl Call for Sleep {
    fn call(&self, cx: &mut MsgCx) -> R {
        let n = cx
            .eval_int(&self.0)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_micros(n.saturating_mul(self.1)));
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct CheckTimeRec(Fmt, Option<IntArg>);

fn build_check_time_rec(mut a: Args<'_>) -> Result<Box<dyn Call>, FixupError> {
    let f = a.fmt(0).unwrap_or_default();
    if let Some(c) = f.as_const()
        && let Err(e) = crate::timerec::TimeRec::parse(&String::from_utf8_lossy(c))
    {
        return Err(FixupError::arg(0, e));
    }
    Ok(Box::new(CheckTimeRec(f, a.int(1))))
}

impl Call for CheckTimeRec {
    /// 1 when the time matches the recurrence, -1 when not, -2 on a bad recurrence.
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut b = cx.take_buf();
        cx.eval_fmt(&self.0, &mut b);
        let t = match &self.1 {
            Some(x) => cx.eval_int(x).unwrap_or(0),
            None => cx.now_us.div_euclid(1_000_000),
        };
        let r = match crate::timerec::TimeRec::parse(&String::from_utf8_lossy(&b)) {
            Ok(rec) => Ret::of(rec.matches(t)),
            Err(_) => Ret(-2),
        };
        cx.give_buf(b);
        Ok(r)
    }
}

#[derive(Debug)]
struct Lock(Fmt, bool);

impl Call for Lock {
    fn call(&self, cx: &mut MsgCx) -> R {
        let mut k = cx.take_buf();
        cx.eval_fmt(&self.0, &mut k);
        if self.1 {
            cx.prog.shared.lock(&k);
        } else {
            cx.prog.shared.unlock(&k);
        }
        cx.give_buf(k);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct TsUsecDelta(Box<[IntArg; 4]>, Box<PvRef>);

impl Call for TsUsecDelta {
    fn call(&self, cx: &mut MsgCx) -> R {
        let v: Vec<i64> = self.0.iter().map(|a| cx.eval_int(a).unwrap_or(0)).collect();
        let d = ((v[0] - v[2]) * 1_000_000 + (v[1] - v[3])).abs();
        let mut b = cx.take_buf();
        cx.set_var(&self.1, Kind::Int(d), &mut b);
        cx.give_buf(b);
        Ok(Ret::TRUE)
    }
}

#[derive(Debug)]
struct AccurateTime(Box<PvRef>, Box<PvRef>, Option<Box<PvRef>>);

impl Call for AccurateTime {
    fn call(&self, cx: &mut MsgCx) -> R {
        let now = cx.now_us;
        let mut b = cx.take_buf();
        cx.set_var(&self.0, Kind::Int(now.div_euclid(1_000_000)), &mut b);
        cx.set_var(&self.1, Kind::Int(now.rem_euclid(1_000_000)), &mut b);
        if let Some(v) = &self.2 {
            b.clear();
            let _ = std::io::Write::write_fmt(
                &mut b,
                format_args!(
                    "{}.{:06}",
                    now.div_euclid(1_000_000),
                    now.rem_euclid(1_000_000)
                ),
            );
            cx.set_var(v, Kind::Str, &mut b);
        }
        cx.give_buf(b);
        Ok(Ret::TRUE)
    }
}

#[allow(dead_code)]
fn regex_unused(_: RegexArg) {}

#[allow(dead_code)]
fn int_of(k: Kind, s: &[u8]) -> Option<i64> {
    as_int(k, s)
}
