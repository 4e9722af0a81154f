"""The chat's offline quality protocol: simulated users from held-out data, scripted 3-turn
conversations against the real pipeline, figures per turn type beside the CF-only list.

    from chat.evaluation.protocol import chat_quality_run, chat_quality_format
"""
