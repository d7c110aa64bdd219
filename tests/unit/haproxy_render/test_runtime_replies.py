"""Parsing HAProxy 2.6's replies: the master CLI's `show proc` and `show servers state`
(texts captured from haproxy 2.6.12)."""

from appliers.haproxy.runtime_api import ProcTable, ServerRuntime, Worker, parse_servers_state, parse_show_proc

SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>      
22148           master          1 [failed: 0]   0d00h00m12s     2.6.12-1+deb12u4
# workers
22654           worker          0               0d00h00m00s     2.6.12-1+deb12u4
22149           worker          1               0d00h00m12s     2.6.12-1+deb12u4
# programs

"""

SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
5 a_1 1 s1 127.0.0.1 2 4 0 1 1 1 0 2 6 0 0 0 - 18500 - 0 0 - - 0
5 a_1 2 s2 127.0.0.1 0 5 1 1 4 1 0 0 14 0 0 0 - 1 - 0 0 - - 0
6 t_2 1 s1 127.0.0.2 0 4 1 1 1 8 2 0 6 0 0 0 - 18500 - 0 0 - - 0
"""


def test_show_proc_gives_the_reload_counter_and_worker_generations():
    table = parse_show_proc(SHOW_PROC)
    assert table == ProcTable(22148, 1, 0, (Worker(22654, 0), Worker(22149, 1)))
    assert table.current_workers == (Worker(22654, 0),)


def test_a_failed_reload_is_counted():
    assert parse_show_proc(SHOW_PROC.replace("[failed: 0]", "[failed: 2]")).failed_reloads == 2


def test_servers_state_reads_address_weight_and_maintenance():
    state = parse_servers_state(SERVERS_STATE)
    # s1 left maintenance (`state ready`): bit 0x04 stays set but means only "disabled in the config"
    assert state["a_1"]["s1"] == ServerRuntime("a_1", "s1", "127.0.0.1", 18500, 0, False, True)
    assert state["a_1"]["s2"] == ServerRuntime("a_1", "s2", "127.0.0.1", 1, 1, True, False)
    assert state["t_2"]["s1"].up is False and state["t_2"]["s1"].maintenance is False
