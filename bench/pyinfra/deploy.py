# The shipped playbooks/wavix.yml written for pyinfra, for the benchmark only: the same
# templates and files, rescan/reloadxml only when something changed.
import os
import tempfile

from pyinfra import host
from pyinfra.operations import files, server

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "templates")
conf = host.data.freeswitch_conf_root
fs_cli = host.data.fs_cli
ctx = dict(
    inventory_hostname=host.name,
    wavix_realm="us.wavix.net",
    wavix_failover_proxy="",
    wavix_expire_seconds=600,
    wavix_ping_seconds=30,
    wavix_inbound_context="wavix_inbound",
    wavix_user_context="wavix",
    wavix_ip_auth=False,
    caller_id_passthrough=True,
    wavix_username=host.data.wavix_username,
    wavix_password=host.data.wavix_password,
    pbx_user=host.data.user,
    did_routes=host.data.did_routes,
)
# The templates use a variable `user`, which files.template() takes as the file owner:
# render the shared template under another name.
USER_TEMPLATE = os.path.join(tempfile.gettempdir(), "switchyard-bench-user.xml.j2")
with open(os.path.join(TEMPLATES, "user.xml.j2")) as f:
    text = "{% set user = pbx_user %}" + f.read()
with open(USER_TEMPLATE, "w") as f:
    f.write(text)
own = dict(user="freeswitch", group="freeswitch", mode="640")

gw = files.template(
    name="registration gateway",
    src=os.path.join(TEMPLATES, "gateway.xml.j2"),
    dest=f"{conf}/sip_profiles/external/wavix.xml",
    gateway_name="wavix", gateway_register=True, gateway_realm="us.wavix.net", gateway_proxy="us.wavix.net",
    **ctx, **own,
)
dp = files.template(
    name="dialplan",
    src=os.path.join(TEMPLATES, "dialplan.xml.j2"),
    dest=f"{conf}/dialplan/wavix.xml",
    wavix_primary_gateway="wavix",
    **ctx, **own,
)
us = files.template(
    name="directory user",
    src=USER_TEMPLATE,
    dest=f"{conf}/directory/default/1000.xml",
    **ctx, **own,
)
files.line(
    name="rtp start",
    path=f"{conf}/autoload_configs/switch.conf.xml",
    line=r'^\s*(<!--\s*)?<param name="rtp-start-port".*',
    replace='    <param name="rtp-start-port" value="10000"/>',
)
files.line(
    name="rtp end",
    path=f"{conf}/autoload_configs/switch.conf.xml",
    line=r'^\s*(<!--\s*)?<param name="rtp-end-port".*',
    replace='    <param name="rtp-end-port" value="20000"/>',
)
server.shell(name="rescan", commands=[f"{fs_cli} -x 'sofia profile external rescan'"], _if=gw.did_change)
server.shell(name="reloadxml", commands=[f"{fs_cli} -x reloadxml"], _if=lambda: dp.did_change() or us.did_change())
