# Drift runs (docs/decisions/0054): a run's mode (apply, or check: the playbook in check mode, nothing
# changed at the target), with a database default `apply` so a NetBox process still running the previous
# code keeps creating runs meanwhile (the causes drift_check and drift are choices only: NetBox keeps
# choices out of migrations); and when a root's last check run ended (the drift scheduler's clock),
# nullable: never checked.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('unicop', '0003_background_hashes'),
    ]

    operations = [
        migrations.AddField(
            model_name='reconciliationrun',
            name='mode',
            field=models.CharField(db_default='apply', default='apply', max_length=10),
        ),
        migrations.AddField(
            model_name='root',
            name='last_drift_check',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
