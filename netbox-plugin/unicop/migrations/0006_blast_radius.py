# Blast radius with a UNICOP-side approval (docs/decisions/0065): on a run, the digests of the members it
# was launched with (`{"<object_type>/<id>": sha256 of the member's canonical JSON}`; null: a run written
# before 0006, a check run, or one that ended before its snapshot was read), the blast-radius diff against
# the baseline run when it went above the root's limit (counts and up to 20 member keys; null: not held),
# and the decision taken on it through the bridge ({decision, by, sub, reason, at}; null: none yet).
# All three nullable with no database default needed: a NetBox process still running the previous code
# keeps creating runs meanwhile.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('unicop', '0005_rollouts'),
    ]

    operations = [
        migrations.AddField(
            model_name='reconciliationrun',
            name='member_digests',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='blast_radius',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='gate_decision',
            field=models.JSONField(blank=True, null=True),
        ),
    ]
