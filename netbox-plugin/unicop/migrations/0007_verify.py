# Post-run verification (docs/decisions/0066): the AWX job id of a run's verify job, launched after its apply
# job succeeded (the root policy's `verify`). Nullable, no database default needed: a NetBox process still
# running the previous code keeps creating and writing runs meanwhile.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('unicop', '0006_blast_radius'),
    ]

    operations = [
        migrations.AddField(
            model_name='reconciliationrun',
            name='verify_job_id',
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
    ]
