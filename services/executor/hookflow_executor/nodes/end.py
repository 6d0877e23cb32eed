"""`end`: finish the execution here, as succeeded or failed."""

from typing import Literal

from hookflow_executor.nodes.base import NodeConfig, NodeType, RunState, Step, register


class EndConfig(NodeConfig):
    endStatus: Literal["succeeded", "failed"] = "succeeded"


class End(NodeType[EndConfig]):
    name = "end"
    config = EndConfig

    async def run(self, config: EndConfig, state: RunState) -> Step:
        return Step(result=config.endStatus, end=config.endStatus)


register(End())
