# The cause chain on runs (docs/decisions/0039): which NetBox change(s), request(s), actor and intent a
# run came from. Every column has a database default, so a NetBox process still running the previous
# code (which does not name these columns) keeps inserting runs while the migration is applied.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('unicop', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='reconciliationrun',
            name='intent_id',
            field=models.CharField(blank=True, db_default='', default='', max_length=36),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='change_ids',
            field=models.JSONField(blank=True, db_default=[], default=list),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='request_ids',
            field=models.JSONField(blank=True, db_default=[], default=list),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='actor',
            field=models.CharField(blank=True, db_default='', default='', max_length=150),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='cause_event',
            field=models.CharField(
                blank=True,
                choices=[('created', 'Created'), ('updated', 'Updated'), ('deleted', 'Deleted')],
                db_default='',
                default='',
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='cause_object_type',
            field=models.CharField(blank=True, db_default='', default='', max_length=100),
        ),
        migrations.AddField(
            model_name='reconciliationrun',
            name='cause_object_id',
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
    ]
