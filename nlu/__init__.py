"""Chinese-first NLU for telecom customer service: intent, complaint type, entities, urgency."""

from nlu.config import ConfigError, NLUConfig
from nlu.data import COMPLAINT_TYPES, INTENTS, DataError
from nlu.engine import FALLBACK_INTENT, NLU, ParseResult, Ranked
from nlu.entities import Entity, mask_id_card, mask_phone, mask_text
from nlu.normalize import NLUInputError

__all__ = [
    "COMPLAINT_TYPES", "FALLBACK_INTENT", "INTENTS", "NLU", "ConfigError", "DataError", "Entity", "NLUConfig",
    "NLUInputError", "ParseResult", "Ranked", "mask_id_card", "mask_phone", "mask_text",
]  # fmt: skip
