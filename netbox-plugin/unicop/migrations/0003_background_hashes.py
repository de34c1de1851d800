# Current hashes recomputed in the background (docs/decisions/0043): when a root's hash went stale
# (hash_stale_since, the recompute's order) and when it was last stored (hash_computed_at). Both
# nullable, so a NetBox process still running the previous code keeps writing root rows meanwhile.
# Roots already dirty are stale from now on.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('unicop', '0002_run_cause_chain'),
    ]

    operations = [
        migrations.AddField(
            model_name='root',
            name='hash_stale_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='root',
            name='hash_computed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            'UPDATE unicop_root SET hash_stale_since = now() WHERE hash_dirty',
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name='root',
            index=models.Index(
                condition=models.Q(hash_dirty=True),
                fields=['hash_stale_since', 'id'],
                name='unicop_root_stale',
            ),
        ),
    ]
